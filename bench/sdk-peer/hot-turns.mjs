#!/usr/bin/env node
// Benchmark peer for Konsole.Actors: the official Claude Agent SDK drives the pinned Claude Code CLI
// in streaming-input mode (ONE query, ONE hot CLI process) against a fake Messages API that is already
// running (the C# FakeMessagesApi the benchmark starts: `dotnet run -c Release --project
// bench/Konsole.Bench -- realcli` runs this script), and times each turn from pushing the user message
// to receiving its `result` message. Every answer is checked to be "echo: <prompt>".
//
//   node hot-turns.mjs --api <baseUrl> [--turns N] [--warmup W] [--cli <path>] [--config-dir <dir>]
//                      [--cwd <dir>] [--preset-prompt] [--turn-timeout-ms MS] [--verbose]
//
// Prints ONE line of JSON to stdout (sdkVersion, turns, p50Ms, p99Ms, meanMs, samplesMs, firstTurnMs,
// cliArgv and cliEnvAdded: the command line the SDK started the CLI with and the environment variables
// it added, init: what the CLI's init message said); diagnostics go to stderr. Exit code 0 on success,
// 1 on failure, 2 on bad arguments.
//   --api          (required) base URL of the fake Messages API, e.g. http://127.0.0.1:PORT.
//   --cli          the CLI to run (default ../../.tools/claude/node_modules/.bin/claude).
//   --config-dir   CLAUDE_CONFIG_DIR for the CLI; without it a temp dir with made-up OAuth credentials.
//   --cwd          the CLI's working directory; without it an empty temp dir.
//   --preset-prompt  use the claude_code system prompt preset, as a bare `claude -p` does (the SDK's
//                  default is an EMPTY custom system prompt, sent in its initialize request).
//   --turn-timeout-ms  fail (exit 1) when a turn has no result within MS ms (default 120000).
//   --verbose      echo the CLI's stderr and the SDK's message types to stderr.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { query } from '@anthropic-ai/claude-agent-sdk';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// The package's exports do not expose package.json: read it next to the resolved entry point.
const sdkVersion = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve('@anthropic-ai/claude-agent-sdk')), 'package.json'), 'utf8')).version;

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const o = {
    turns: 200,
    warmup: 10,
    cli: path.resolve(here, '../../.tools/claude/node_modules/.bin/claude'),
    api: null,
    configDir: null,
    cwd: null,
    presetPrompt: false,
    verbose: false,
    turnTimeoutMs: 120_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const int = (v) => {
      const n = Number.parseInt(v, 10);
      if (!Number.isFinite(n) || n < 0 || String(n) !== v.trim()) throw new Error(`${a}: not a non-negative integer: ${v}`);
      return n;
    };
    switch (a) {
      case '--turns': o.turns = int(next()); break;
      case '--warmup': o.warmup = int(next()); break;
      case '--cli': o.cli = path.resolve(next()); break;
      case '--api': o.api = next().replace(/\/+$/, ''); break;
      case '--config-dir': o.configDir = path.resolve(next()); break;
      case '--cwd': o.cwd = path.resolve(next()); break;
      case '--preset-prompt': o.presetPrompt = true; break;
      case '--verbose': o.verbose = true; break;
      case '--turn-timeout-ms': o.turnTimeoutMs = int(next()); break;
      case '-h': case '--help':
        process.stderr.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 22).join('\n') + '\n');
        process.exit(0);
      default: throw new Error(`unknown argument: ${a}`);
    }
  }
  if (o.turns < 1) throw new Error('--turns must be at least 1');
  if (!o.api) throw new Error('--api <baseUrl> is required (the fake Messages API to run against)');
  return o;
}

const log = (...parts) => process.stderr.write(`[sdk-peer] ${parts.join(' ')}\n`);

// ---------------------------------------------------------------- streaming input

/** An async iterable of SDKUserMessage fed by push(); it stays open (CLI stays hot) until end(). */
function inputQueue() {
  const buffered = [];
  let waiting = null;
  let ended = false;
  return {
    push(text) {
      const msg = { type: 'user', message: { role: 'user', content: text }, parent_tool_use_id: null };
      if (waiting) { const w = waiting; waiting = null; w({ value: msg, done: false }); }
      else buffered.push(msg);
    },
    end() {
      ended = true;
      if (waiting) { const w = waiting; waiting = null; w({ value: undefined, done: true }); }
    },
    [Symbol.asyncIterator]() {
      return {
        next: () => {
          if (buffered.length) return Promise.resolve({ value: buffered.shift(), done: false });
          if (ended) return Promise.resolve({ value: undefined, done: true });
          return new Promise((r) => { waiting = r; });
        },
        return: () => { ended = true; return Promise.resolve({ value: undefined, done: true }); },
      };
    },
  };
}

// ---------------------------------------------------------------- helpers

function writeCredentials(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const creds = {
    claudeAiOauth: {
      accessToken: 'sk-ant-oat01-bench',
      refreshToken: 'sk-ant-ort01-bench',
      expiresAt: Date.now() + 24 * 3600 * 1000,
      scopes: ['user:inference', 'user:profile'],
      subscriptionType: 'max',
      rateLimitTier: 'default_claude_max_20x',
    },
  };
  fs.writeFileSync(path.join(dir, '.credentials.json'), JSON.stringify(creds), { mode: 0o600 });
}

/** Linux: live child processes of this process (the SDK-spawned CLI). */
function childPids() {
  const pids = [];
  try {
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(fields[1]) === process.pid && fields[0] !== 'Z') pids.push(Number(d));
      } catch { /* gone */ }
    }
  } catch { /* no /proc */ }
  return pids;
}

function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { return null; }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, p) {
  // nearest-rank
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

const round = (x) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------- main

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    log(`${e.message} (--help lists the options)`);
    process.exit(2);
  }
  if (!fs.existsSync(opts.cli)) throw new Error(`CLI not found: ${opts.cli} (pass --cli)`);

  const temps = [];
  const mkTemp = (prefix) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix)); temps.push(d); return d; };

  const baseUrl = opts.api;
  let configDir = opts.configDir;
  if (!configDir) { configDir = mkTemp('sdk-peer-config-'); writeCredentials(configDir); }
  const cwd = opts.cwd ?? mkTemp('sdk-peer-cwd-');

  // The environment FakeMessagesApi.CliEnvironment lists, minus what would select another login.
  const env = { ...process.env };
  for (const name of ['ANTHROPIC_API_KEY', 'CLAUDE_CODE_OAUTH_TOKEN', 'CLAUDECODE', 'CLAUDE_CONFIG_DIR']) delete env[name];
  Object.assign(env, {
    ANTHROPIC_BASE_URL: baseUrl,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    NO_PROXY: '127.0.0.1,localhost',
    CLAUDE_CONFIG_DIR: configDir,
  });

  log(`sdk ${sdkVersion}, cli ${opts.cli}, api ${baseUrl}, config ${configDir}, cwd ${cwd}`);

  const stderrLines = [];
  const input = inputQueue();
  const q = query({
    prompt: input,
    options: {
      pathToClaudeCodeExecutable: opts.cli,
      cwd,
      env,
      permissionMode: 'default',
      ...(opts.presetPrompt ? { systemPrompt: { type: 'preset', preset: 'claude_code' } } : {}),
      stderr: (data) => {
        stderrLines.push(data);
        if (opts.verbose) process.stderr.write(`[cli stderr] ${data}${data.endsWith('\n') ? '' : '\n'}`);
      },
    },
  });

  // Stop the CLI: end the input stream (stdin EOF), close the query (kills the process), then make
  // sure no child is left; remove the temp dirs. Also on SIGINT/SIGTERM.
  let stopping = null;
  const stop = () => (stopping ??= (async () => {
    input.end();
    try { q.close(); } catch (e) { log(`close: ${e?.message ?? e}`); }
    for (let i = 0; i < 50 && childPids().length; i++) await sleep(100);
    for (const pid of childPids()) {
      log(`killing leftover child ${pid}: ${JSON.stringify(cmdline(pid))}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const d of temps) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
  })());
  const onSignal = (signal) => {
    log(`${signal}: stopping`);
    stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const seenTypes = new Map();
  let cliArgv = null;
  let cliEnvAdded = null;
  let initInfo = null;

  /** Push one prompt, pull messages until its `result`; returns [ms, result]. */
  async function turn(text) {
    let timer;
    const deadline = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result for "${text}" within ${opts.turnTimeoutMs} ms`)), opts.turnTimeoutMs);
    });
    try {
      return await turnUntilResult(text, deadline);
    } finally {
      clearTimeout(timer);
    }
  }

  async function turnUntilResult(text, deadline) {
    const t0 = performance.now();
    input.push(text);
    for (;;) {
      const { value: m, done } = await Promise.race([q.next(), deadline]);
      if (done) throw new Error(`the query ended before the result of "${text}"`);
      const key = m.type + (m.subtype ? '/' + m.subtype : '');
      seenTypes.set(key, (seenTypes.get(key) ?? 0) + 1);
      if (opts.verbose) log('message', key);
      if (m.type === 'system' && m.subtype === 'init') initInfo = { claude_code_version: m.claude_code_version, model: m.model, tools: m.tools?.length, permissionMode: m.permissionMode };
      if (!cliArgv) {
        const kids = childPids();
        if (kids.length) {
          cliArgv = cmdline(kids[0]);
          try {
            const childEnv = fs.readFileSync(`/proc/${kids[0]}/environ`, 'utf8').split('\0').filter(Boolean);
            cliEnvAdded = childEnv.filter((kv) => { const k = kv.slice(0, kv.indexOf('=')); return env[k] !== kv.slice(k.length + 1); });
            if (opts.verbose) log(`cli env added by the SDK: ${JSON.stringify(cliEnvAdded)}`);
          } catch { /* not Linux */ }
        }
      }
      if (m.type === 'result') {
        const ms = performance.now() - t0;
        if (m.subtype !== 'success' || m.is_error) throw new Error(`turn "${text}" failed: ${JSON.stringify(m).slice(0, 600)}`);
        const expected = `echo: ${text}`;
        if (m.result !== expected) throw new Error(`turn "${text}": expected result ${JSON.stringify(expected)}, got ${JSON.stringify(m.result)}`);
        return ms;
      }
    }
  }

  let exitCode = 0;
  let output = null;
  try {
    const tStart = performance.now();
    let firstTurnMs = null;
    for (let i = 1; i <= opts.warmup; i++) {
      const ms = await turn(`warmup turn ${i}`);
      if (i === 1) {
        firstTurnMs = round(performance.now() - tStart);
        log(`first (cold) turn incl. CLI start: ${round(ms)} ms (since query(): ${firstTurnMs} ms)`);
      }
    }
    const samples = [];
    for (let i = 1; i <= opts.turns; i++) samples.push(await turn(`bench turn ${i}`));
    const sorted = [...samples].sort((a, b) => a - b);
    output = {
      sdkVersion,
      cli: opts.cli,
      turns: opts.turns,
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
      meanMs: round(samples.reduce((a, b) => a + b, 0) / samples.length),
      samplesMs: samples.map(round),
      firstTurnMs,
      cliArgv,
      cliEnvAdded,
      init: initInfo,
    };
    log(`init: ${JSON.stringify(initInfo)}`);
    log(`cli argv: ${cliArgv ? JSON.stringify(cliArgv) : '(not seen)'}`);
    log(`cli env added by the SDK: ${cliEnvAdded ? JSON.stringify(cliEnvAdded) : '(not seen)'}`);
    log(`message types: ${JSON.stringify(Object.fromEntries(seenTypes))}`);
    log(`all ${opts.warmup + opts.turns} answers checked: "echo: <prompt>"; min ${round(sorted[0])} ms, max ${round(sorted[sorted.length - 1])} ms`);
  } catch (e) {
    exitCode = 1;
    log(stopping ? `stopped: ${e?.message ?? e}` : `FAILED: ${e?.stack ?? e}`);
    if (stderrLines.length) log(`cli stderr:\n${stderrLines.join('').slice(-4000)}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stop();
    if (!opts.verbose && stderrLines.length && exitCode === 0)
      log(`cli stderr (${stderrLines.length} chunks): ${stderrLines.join('').slice(0, 2000).trim()}`);
  }
  if (output) process.stdout.write(JSON.stringify(output) + '\n', () => process.exit(exitCode));
  else process.exit(exitCode);
}

main().catch((e) => {
  log(`FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
