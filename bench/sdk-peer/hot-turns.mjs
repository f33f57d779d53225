#!/usr/bin/env node
// Benchmark peer for Konsole.Actors: the official Claude Agent SDK drives the pinned Claude Code CLI
// in streaming-input mode (ONE query, ONE hot CLI process) against a fake Messages API, and times
// each turn from pushing the user message to receiving its `result` message.
//
//   node hot-turns.mjs [--turns N] [--warmup W] [--cli <path>] [--api <baseUrl>] [--config-dir <dir>]
//                      [--cwd <dir>] [--preset-prompt] [--turn-timeout-ms MS] [--verbose]
//
// Prints ONE line of JSON to stdout; diagnostics go to stderr. Exit code 0 on success, 1 on failure.
//   --api          use an already running fake (e.g. the C# FakeMessagesApi); without it a Node fake
//                  answering like FakeMessagesApi/FakeReplies is started on 127.0.0.1:0.
//   --config-dir   CLAUDE_CONFIG_DIR for the CLI; without it a temp dir with fake OAuth credentials.
//   --cwd          the CLI's working directory; without it an empty temp dir.
//   --preset-prompt  use the claude_code system prompt preset (the SDK default is an EMPTY system
//                  prompt, unlike a bare `claude -p`).
//   --turn-timeout-ms  fail (exit 1) when a turn has no result within MS ms (default 120000).
//   --verbose      echo the CLI's stderr and the SDK's message types to stderr.

import http from 'node:http';
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
        process.stderr.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 17).join('\n') + '\n');
        process.exit(0);
      default: throw new Error(`unknown argument: ${a}`);
    }
  }
  if (o.turns < 1) throw new Error('--turns must be at least 1');
  return o;
}

const log = (...parts) => process.stderr.write(`[sdk-peer] ${parts.join(' ')}\n`);

// ---------------------------------------------------------------- the Node fake Messages API
// Mirrors src/Konsole.Testing/FakeApi/FakeMessagesApi.cs + FakeReplies.cs (minus the
// [[api-slow]] / [[api-429]] directives): POST /v1/messages answers "echo: <last typed user text>",
// streamed as message_start, content_block_start, ping, one content_block_delta per word,
// content_block_stop, message_delta (end_turn), message_stop, with the OAuth rate-limit headers.

const REMINDER = /<system-reminder>[\s\S]*?<\/system-reminder>\s*/g;
const INJECTED = /^\s*(<([a-z][a-z0-9_-]*)[^>]*>[\s\S]*?<\/\2>\s*)+$/;

function texts(content) {
  if (typeof content === 'string') return [content];
  if (Array.isArray(content))
    return content.filter((b) => b && typeof b === 'object' && b.type === 'text' && typeof b.text === 'string').map((b) => b.text);
  return [];
}

function lastUserText(body) {
  const typedAll = [];
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    if (m?.role !== 'user') continue;
    const typed = texts(m.content).map((t) => t.replace(REMINDER, '')).filter((t) => !INJECTED.test(t));
    for (let i = 0; i < typed.length - 1; i++) if (typed[i].endsWith('\n')) typed[i] = typed[i].slice(0, -1);
    typedAll.push(...typed.filter((t) => t.length > 0));
  }
  return typedAll.length ? typedAll[typedAll.length - 1] : '';
}

function allowedHeaders(now) {
  const fiveHours = String(Math.floor(now / 1000) + 5 * 3600);
  return {
    'anthropic-ratelimit-unified-status': 'allowed',
    'anthropic-ratelimit-unified-reset': fiveHours,
    'anthropic-ratelimit-unified-representative-claim': 'five_hour',
    'anthropic-ratelimit-unified-5h-status': 'allowed',
    'anthropic-ratelimit-unified-5h-reset': fiveHours,
    'anthropic-ratelimit-unified-5h-utilization': '0.01',
    'anthropic-ratelimit-unified-7d-status': 'allowed',
    'anthropic-ratelimit-unified-7d-reset': String(Math.floor(now / 1000) + 7 * 86400),
    'anthropic-ratelimit-unified-7d-utilization': '0.01',
  };
}

function json(res, status, value, headers = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function startFake(verbose) {
  let turnRequests = 0;
  const stats = { turnRequests: 0, side: [] };
  const server = http.createServer({ noDelay: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url, 'http://fake');
      if (req.method === 'POST' && url.pathname.toLowerCase() === '/v1/messages') {
        let body;
        try {
          body = JSON.parse(raw);
          if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('the request body must be a JSON object');
        } catch (e) {
          stats.side.push(`${req.method} ${req.url}`);
          return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: `The request body is not a Messages API request: ${e.message}` } });
        }
        const number = ++turnRequests;
        stats.turnRequests = turnRequests;
        if (verbose) {
          const system = texts(body.system).join('\n');
          log(`fake: #${number} ${url.pathname}${url.search} ${raw.length} bytes, model ${body.model}, stream ${body.stream}, ` +
            `messages ${body.messages?.length}, tools ${body.tools?.length ?? 0}, system ${system.length} chars, last "${lastUserText(body)}"`);
        }
        const num = String(number).padStart(6, '0');
        const now = Date.now();
        const answer = 'echo: ' + lastUserText(body);
        const pieces = answer.match(/\S+\s*/g) ?? [];
        const id = `msg_fake_${num}`;
        const model = typeof body.model === 'string' ? body.model : 'claude-opus-5-5';
        const headers = { 'request-id': `req_fake_${num}`, ...allowedHeaders(now) };
        if (body.stream !== true) {
          return json(res, 200, {
            id, type: 'message', role: 'assistant', model,
            content: [{ type: 'text', text: answer }],
            stop_reason: 'end_turn', stop_sequence: null,
            usage: { input_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: pieces.length },
          }, headers);
        }
        res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
        const event = (name, data) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
        event('message_start', {
          type: 'message_start',
          message: {
            id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
            usage: { input_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
          },
        });
        event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
        event('ping', { type: 'ping' });
        for (const p of pieces) event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } });
        event('content_block_stop', { type: 'content_block_stop', index: 0 });
        event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: pieces.length } });
        event('message_stop', { type: 'message_stop' });
        res.end();
        return;
      }
      // Side requests, as FakeMessagesApi.SideAsync answers them; 404 JSON for anything else.
      stats.side.push(`${req.method} ${url.pathname}`);
      if (req.method === 'HEAD') { res.writeHead(200); res.end(); return; }
      if (req.method === 'POST' && url.pathname.toLowerCase() === '/v1/messages/count_tokens')
        return json(res, 200, { input_tokens: Math.max(1, Math.floor(raw.length / 4)) });
      if (req.method === 'GET' && url.pathname.toLowerCase() === '/v1/models')
        return json(res, 200, { data: [], has_more: false, first_id: null, last_id: null });
      return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: `${req.method} ${url.pathname} is not served by the fake Messages API` } });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        baseUrl: `http://127.0.0.1:${port}`,
        stats,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

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
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(opts.cli)) throw new Error(`CLI not found: ${opts.cli} (pass --cli)`);

  const temps = [];
  const mkTemp = (prefix) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix)); temps.push(d); return d; };

  const fake = opts.api ? null : await startFake(opts.verbose);
  const baseUrl = opts.api ?? fake.baseUrl;
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

  log(`sdk ${sdkVersion}, cli ${opts.cli}, api ${baseUrl}${fake ? ' (node fake)' : ''}, config ${configDir}, cwd ${cwd}`);

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
  // sure no child is left; stop the fake; remove the temp dirs. Also on SIGINT/SIGTERM.
  let stopping = null;
  const stop = () => (stopping ??= (async () => {
    input.end();
    try { q.close(); } catch (e) { log(`close: ${e?.message ?? e}`); }
    for (let i = 0; i < 50 && childPids().length; i++) await sleep(100);
    for (const pid of childPids()) {
      log(`killing leftover child ${pid}: ${JSON.stringify(cmdline(pid))}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (fake) await fake.close();
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
          if (opts.verbose) {
            try {
              const childEnv = fs.readFileSync(`/proc/${kids[0]}/environ`, 'utf8').split('\0').filter(Boolean);
              log(`cli env added by the SDK: ${JSON.stringify(childEnv.filter((kv) => { const k = kv.slice(0, kv.indexOf('=')); return env[k] !== kv.slice(k.length + 1); }))}`);
            } catch { /* not Linux */ }
          }
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
    for (let i = 1; i <= opts.warmup; i++) {
      const ms = await turn(`warmup turn ${i}`);
      if (i === 1) log(`first (cold) turn incl. CLI start: ${round(ms)} ms (since query(): ${round(performance.now() - tStart)} ms)`);
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
    };
    log(`init: ${JSON.stringify(initInfo)}`);
    log(`cli argv: ${cliArgv ? JSON.stringify(cliArgv) : '(not seen)'}`);
    log(`message types: ${JSON.stringify(Object.fromEntries(seenTypes))}`);
    log(`all ${opts.warmup + opts.turns} answers checked: "echo: <prompt>"; min ${round(sorted[0])} ms, max ${round(sorted[sorted.length - 1])} ms`);
    if (fake) log(`node fake: ${fake.stats.turnRequests} POST /v1/messages, side requests: ${JSON.stringify(fake.stats.side)}`);
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
