using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Hosting;
using Konsole.Actors.Accounts;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Bench;

/// <summary>
/// Scenario 4: the real pinned Claude Code CLI against the project's fake Messages API on loopback, every figure taken in
/// one run, side by side (interleaved round by round, or in alternating blocks):
/// a hot turn (gateway, raw pipe) against a cold one (a new CLI process per prompt); the gateway against the official
/// TypeScript Agent SDK (bench/sdk-peer, a child process); a conversation switch (a restart with <c>--resume</c>)
/// against a hot turn; quick turns (a <c>/clear</c> after each) against a hot full turn, and the <c>/clear</c> itself.
/// </summary>
public static class RealCliBench
{
    private const int WarmupRounds = 3;
    private const int SdkBlocks = 4; // per side, alternating: SDK, gateway, raw pipe; raw pipe, gateway, SDK; ...
    private const int SdkWarmup = 5; // per block, on every side: the SDK's first includes its CLI start, the others' a /clear
    private const int QuickBlock = 5; // quick turns back to back, then as many hot full turns
    private static readonly TimeSpan TurnTimeout = TimeSpan.FromSeconds(60);

    public static async Task<Report> RunAsync(int turns)
    {
        if (turns < 1)
            throw new ArgumentOutOfRangeException(nameof(turns), turns, "at least one turn");
        var run = Stopwatch.StartNew();
        var cli = await PinnedClaudeCli.EnsureInstalledAsync();
        var peerDirectory = await SdkPeer.EnsureInstalledAsync();
        Console.Error.WriteLine($"[realcli] CLI {cli}, SDK peer {peerDirectory} ({run.Elapsed.TotalSeconds:0.0} s)");

        await using var api = await FakeMessagesApi.StartAsync();
        var environment = FakeMessagesApi.CliEnvironment(api.BaseUrl);
        using var gatewayBox = KonsoleSandbox.Create(1); // one account: dashboard (full process) and quickturn (chat process)
        using var rawBox = KonsoleSandbox.Create(1);
        using var coldBox = KonsoleSandbox.Create(1);
        using var sdkBox = KonsoleSandbox.Create(1);
        using var switchBox = KonsoleSandbox.Create(1);
        var rawSettings = rawBox.Settings(cli, environment);
        var coldLaunch = Launches.Full(coldBox.Settings(cli, environment));

        var hot = new Samples("gateway hot turn (/sessions/{id}/hot-prompt)");
        var rawHot = new Samples("raw pipe hot turn");
        var cold = new Samples("cold turn (new CLI process, spawn → result)");
        var gatewayVsSdk = new Samples("gateway hot turn");
        var sdk = new Samples("Agent SDK hot turn");
        var rawVsSdk = new Samples("raw pipe hot turn (reference)");
        var sideRequests = new[] { "sdk", "gateway", "raw", "sdk default" }.ToDictionary(s => s, _ => new List<RecordedRequest>());
        var hotSession = "/sessions/hot/hot-prompt";
        var switched = new Samples("conversation switch (restart with --resume)");
        var switchHot = new Samples("hot turn on the same process");
        var quick = new Samples("quick turn (/api/quick-turn), back to back");
        var quickHot = new Samples("gateway hot full turn");
        var rawChat = new Samples("raw pipe chat turn");
        var rawClear = new Samples("raw pipe /clear");
        var blockP50s = new List<(string Side, int Block, double P50, int Count)>();
        SdkPeer.Result? sdkLast = null, sdkDefault = null;
        IReadOnlyList<string> gatewayArgs;
        int[] hotPidsBefore, hotPidsAfter;
        int switchRestarts = 0, hotAfterSwitchRestarts = 0;
        int requestsBefore, requestsAfterHotParts;

        await using (var gateway = await GatewayPath.StartAsync(gatewayBox.Hocon(cli, environment), "gateway"))
        {
            gatewayArgs = Launches.Full(gateway.Host.Settings).Arguments;
            hotPidsBefore = await ProcessIdsAsync(gateway);
            requestsBefore = api.Requests.Count;

            // 1. Hot against cold, interleaved round by round; who goes first rotates.
            Console.Error.WriteLine($"[realcli] part 1, hot vs cold: {turns} rounds ({run.Elapsed.TotalSeconds:0.0} s)");
            await using var raw = await RawPipe.StartAsync(Launches.Full(rawSettings));
            Func<int, Task<(Samples, double)>>[] paths =
            [
                async i => (hot, await GatewayTurnAsync(gateway, "/sessions/hot/hot-prompt", $"hot turn {i}")),
                async i => (rawHot, await Timed(() => raw.TurnAsync($"raw turn {i}").WaitAsync(TurnTimeout))),
                async i => (cold, await ColdTurnAsync(coldLaunch, $"cold turn {i}")),
            ];
            for (var round = -WarmupRounds; round < turns; round++)
                for (var k = 0; k < paths.Length; k++)
                {
                    var (samples, ms) = await paths[(round + WarmupRounds + k) % paths.Length](round);
                    if (round >= 0)
                        samples.Add(ms);
                }

            // 2. The gateway against the Agent SDK, in alternating blocks, with the raw pipe (the gateway's launch, no
            // gateway) as a reference. Each block is a new conversation on every side: the SDK peer starts a new query (a
            // new CLI process), the gateway a new UI session (a /clear on its hot process), the raw pipe writes a /clear.
            Console.Error.WriteLine($"[realcli] part 2, gateway vs Agent SDK: {SdkBlocks} blocks of {turns} turns each way ({run.Elapsed.TotalSeconds:0.0} s)");
            var sdkAccount = sdkBox.Accounts[0];
            for (var block = 0; block < SdkBlocks; block++)
            {
                foreach (var side in block % 2 == 0 ? new[] { "sdk", "gateway", "raw" } : ["raw", "gateway", "sdk"])
                {
                    var first = api.Requests.Count;
                    var blockValues = new List<double>();
                    if (side == "sdk")
                    {
                        sdkLast = await SdkPeer.RunAsync(peerDirectory, cli, api.BaseUrl, sdkAccount.ConfigDir, sdkBox.WorkingDirectory, turns, SdkWarmup, presetPrompt: true);
                        blockValues.AddRange(sdkLast.SamplesMs);
                    }
                    else
                    {
                        if (side == "raw")
                            await raw.TurnAsync("/clear").WaitAsync(TurnTimeout);
                        else
                            hotSession = $"/sessions/sdk-block-{block}/hot-prompt";
                        for (var i = -SdkWarmup; i < turns; i++)
                        {
                            var ms = side == "raw"
                                ? await Timed(() => raw.TurnAsync($"bench turn {i}").WaitAsync(TurnTimeout))
                                : await GatewayTurnAsync(gateway, hotSession, $"bench turn {i}");
                            if (i >= 0)
                                blockValues.Add(ms);
                        }
                    }
                    var all = side switch { "sdk" => sdk, "gateway" => gatewayVsSdk, _ => rawVsSdk };
                    var blockSamples = new Samples(side);
                    foreach (var ms in blockValues)
                    {
                        all.Add(ms);
                        blockSamples.Add(ms);
                    }
                    blockP50s.Add((side, block, blockSamples.P50, blockSamples.Count));
                    sideRequests[side].AddRange(api.Requests.Skip(first));
                }
            }

            // What the SDK does by default (an empty system prompt): one block, for the report, not compared.
            var defaultFirst = api.Requests.Count;
            sdkDefault = await SdkPeer.RunAsync(peerDirectory, cli, api.BaseUrl, sdkAccount.ConfigDir, sdkBox.WorkingDirectory, turns, SdkWarmup, presetPrompt: false);
            sideRequests["sdk default"].AddRange(api.Requests.Skip(defaultFirst));

            // 4. Quick turns back to back (each then pays for the /clear that followed the one before) against hot full
            // turns, in alternating blocks; and the same on raw pipes: a chat process's turn, then its /clear, timed apart.
            Console.Error.WriteLine($"[realcli] part 4, quick turns and /clear: {turns} of each ({run.Elapsed.TotalSeconds:0.0} s)");
            await using (var chat = await RawPipe.StartAsync(CliLaunch.For(rawSettings, rawSettings.Accounts[0], ProcessMode.Chat)))
            {
                await chat.TurnAsync("chat warm-up").WaitAsync(TurnTimeout);
                await chat.TurnAsync("/clear").WaitAsync(TurnTimeout);
                for (var done = 0; done < turns;)
                {
                    var n = Math.Min(QuickBlock, turns - done);
                    await GatewayTurnAsync(gateway, "/api/quick-turn", $"lead-in {done}"); // untimed: each timed one follows another
                    for (var i = 0; i < n; i++)
                        quick.Add(await GatewayTurnAsync(gateway, "/api/quick-turn", $"quick turn {done + i}"));
                    for (var i = 0; i < n; i++)
                        quickHot.Add(await GatewayTurnAsync(gateway, hotSession, $"full turn {done + i}")); // the last block's session: hot
                    for (var i = 0; i < n; i++)
                    {
                        rawChat.Add(await Timed(() => chat.TurnAsync($"chat turn {done + i}").WaitAsync(TurnTimeout)));
                        rawClear.Add(await Timed(() => chat.TurnAsync("/clear").WaitAsync(TurnTimeout)));
                    }
                    done += n;
                }
            }
            hotPidsAfter = await ProcessIdsAsync(gateway);
            requestsAfterHotParts = api.Requests.Count;
        }

        // 3. Conversation switches: two UI sessions alternating on one dashboard process, each turn twice in a row: the
        // first lands on a process holding the other conversation (restarted with --resume), the second is a hot turn.
        Console.Error.WriteLine($"[realcli] part 3, conversation switches: {turns} ({run.Elapsed.TotalSeconds:0.0} s)");
        await using (var gateway = await GatewayPath.StartAsync(switchBox.Hocon(cli, environment), "switch gateway"))
        {
            await GatewayTurnAsync(gateway, "/sessions/ui-a/hot-prompt", "a: first");
            await GatewayTurnAsync(gateway, "/sessions/ui-b/hot-prompt", "b: first"); // a new conversation: a /clear
            for (var i = 0; i < turns; i++)
            {
                var session = i % 2 == 0 ? "ui-a" : "ui-b";
                var before = await ProcessIdsAsync(gateway);
                switched.Add(await GatewayTurnAsync(gateway, $"/sessions/{session}/hot-prompt", $"{session}: switch {i}"));
                var afterSwitch = await ProcessIdsAsync(gateway);
                if (afterSwitch.Except(before).Count() == 1 && before.Except(afterSwitch).Count() == 1)
                    switchRestarts++; // the switch, and it alone, restarted one process (with --resume)
                switchHot.Add(await GatewayTurnAsync(gateway, $"/sessions/{session}/hot-prompt", $"{session}: again {i}"));
                if (!(await ProcessIdsAsync(gateway)).Order().SequenceEqual(afterSwitch.Order()))
                    hotAfterSwitchRestarts++;
            }
        }

        var requests = api.Requests.Count;
        var report = new Report("Real Claude Code CLI: hot, cold, the Agent SDK, conversation switches, /clear (scenario 4)");
        report.Line($"The real CLI ({PinnedClaudeCli.Package}@{PinnedClaudeCli.Version}) against the fake Messages API (FakeMessagesApi, answers " +
            "`echo: <prompt>` streamed word by word) on loopback; one run, figures side by side; every turn's result checked where the path exposes it. " +
            $"{turns} measured turns per figure; whole scenario {run.Elapsed.TotalSeconds:0} s; the fake answered {requests:N0} conversation requests " +
            $"and {api.SideRequests.Count:N0} others.");

        report.Line("");
        report.Line("#### 1. Hot turn against cold turn");
        report.Line($"Interleaved round by round ({WarmupRounds} warm-up rounds). Hot: the gateway's dashboard process, warm, one conversation " +
            "(its history grows with each turn); the raw pipe: a warm process driven by CliWrap alone. Cold: the same launch as the full process, " +
            "spawned per prompt, the prompt written at once, timed from spawn to its result (then stopped, untimed).");
        report.Table(["path", "p50 ms", "p99 ms", "mean ms", "cold p50 / p50"],
            new[] { hot, rawHot, cold }.Select(s => Row(s, $"{cold.P50 / s.P50:0.0}")));
        report.Verdict($"hot ≥ 10 × faster than cold (p50): gateway {cold.P50 / hot.P50:0.0} ×", cold.P50 >= 10 * hot.P50);

        report.Line("");
        report.Line("#### 2. Gateway against the official TypeScript Agent SDK");
        report.Line($"{SdkBlocks} blocks per side, alternating (SDK, gateway, raw pipe in even blocks; raw pipe, gateway, SDK in odd ones), {turns} measured " +
            $"turns per block after {SdkWarmup} warm-up turns, each block a new conversation on every side, so the histories grow alike. " +
            $"SDK: @anthropic-ai/claude-agent-sdk {sdkLast!.SdkVersion} on Node {sdkLast.NodeVersion} (bench/sdk-peer/hot-turns.mjs, a child process), " +
            "streaming-input mode: one query, one hot CLI process per block; the same CLI binary, the same fake API, a sandbox account's config dir " +
            "and working directory; timed from pushing the user message to its `result` message. Gateway: HTTP POST + SSE read to the result event, " +
            "sessions journaled in SQLite, its one hot dashboard process for every block (a new UI session costs a /clear, untimed in the warm-up). " +
            "Raw pipe: the gateway's launch driven by CliWrap alone, a /clear before each block: the CLI's own floor.");
        report.Table(["path", "p50 ms", "p99 ms", "mean ms", "p50 / SDK", "p99 / SDK"],
            new[] { gatewayVsSdk, sdk, rawVsSdk }.Select(s => Row(s, $"{s.P50 / sdk.P50:0.00}", $"{s.P99 / sdk.P99:0.00}")));
        report.Line("Per block (p50 ms): " + string.Join(", ", blockP50s.Select(b => $"{b.Side} #{b.Block + 1} {b.P50:0.0}")) + ".");
        report.Verdict($"gateway p50 ≤ 1.0 × SDK p50: {gatewayVsSdk.P50 / sdk.P50:0.00} ×", gatewayVsSdk.P50 <= sdk.P50);
        report.Line("");
        report.Line("What each side runs:");
        var sdkFlags = sdkLast.CliArgv.Skip(1).ToList();
        var defaultFlags = sdkDefault!.CliArgv.Skip(1).ToList();
        report.Line($"- gateway and raw pipe: `claude {string.Join(' ', gatewayArgs.Select(Shell))}`, plus `initialize` on stdin; " +
            $"environment: CLAUDE_CONFIG_DIR and {string.Join(", ", environment.Keys)}.");
        report.Line($"- SDK as run here (`--preset-prompt`): `claude {string.Join(' ', sdkFlags.Select(Shell))}`; flags only the SDK passes: " +
            $"{Listed(sdkFlags.Except(gatewayArgs))}; only the gateway: {Listed(gatewayArgs.Except(sdkFlags))}; environment the SDK adds: " +
            $"{Listed(sdkLast.EnvAdded)}; its init message: {sdkLast.InitSummary}.");
        report.Line($"- SDK by default (no systemPrompt option): `claude {string.Join(' ', defaultFlags.Select(Shell))}`: the same command line; " +
            "the SDK passes the system prompt in its `initialize` request on stdin instead, an empty custom one (`systemPrompt: [\"\"]`) by default, " +
            "the claude_code preset (nothing: the CLI's own) with `--preset-prompt`.");
        report.Table(["requests to the fake (median)", "body bytes", "system text chars", "tools", "messages"],
            new[] { "gateway", "sdk", "raw", "sdk default" }.Select(side => RequestRow(side switch
            {
                "sdk" => "SDK, --preset-prompt (compared)",
                "sdk default" => "SDK, its default (not compared)",
                "raw" => "raw pipe",
                _ => "gateway",
            }, sideRequests[side])));
        var (gatewayLast, sdkRequest) = (sideRequests["gateway"][^1], sideRequests["sdk"][^1]);
        var sameTools = gatewayLast.ToolNames.SequenceEqual(sdkRequest.ToolNames);
        var sameSystem = Normalized(gatewayLast.SystemText, gatewayBox) == Normalized(sdkRequest.SystemText, sdkBox);
        var defaultSamples = new Samples("SDK default");
        foreach (var ms in sdkDefault.SamplesMs)
            defaultSamples.Add(ms);
        report.Line("Choice: the SDK runs with the claude_code preset (`--preset-prompt`), because its default is an empty system prompt while the " +
            "gateway's processes, like a bare `claude -p`, use Claude Code's own; with its default, the SDK's requests are smaller (table above: the " +
            "system text is then a one-line SDK identity plus the CLI's context message) and the comparison would measure the prompt, not the driver. " +
            $"Aligned so, both sides send requests of the same shape: {(sameTools ? "the same tools" : "DIFFERENT tools")}, " +
            $"{(sameSystem ? "the same system text" : "DIFFERENT system text")} (apart from the sandbox paths and the billing header, entrypoint " +
            $"{Entrypoint(gatewayLast.SystemText)} against {Entrypoint(sdkRequest.SystemText)}); the gateway's conversations also carry the record of " +
            $"the /clear that started them. For the record, one block with the SDK's default ran at p50 {defaultSamples.P50:0.0} ms ({defaultSamples.P50 / sdk.P50:0.00} × " +
            "the preset's). Left as each side ships it: the SDK's `--permission-mode=default` and environment, the gateway's `-p`.");

        report.Line("");
        report.Line("#### 3. Conversation switch");
        report.Line("A gateway of its own, one account: UI sessions a and b alternate on its dashboard process, two turns each in a row. The first " +
            "lands on a process holding the other conversation, so the process is stopped and started again with `--resume` (transcript in the same " +
            $"config dir), timed from the HTTP request to the result event; the second is a hot turn. Switches that restarted one process (its pid read before and after each): {switchRestarts} of {turns}; " +
            $"hot turns after them that restarted any: {hotAfterSwitchRestarts}.");
        report.Table(["turn", "p50 ms", "p99 ms", "mean ms", "p50 / hot on the same process", "p50 / hot (part 1)", "p50 / cold (part 1)"],
            new[] { switched, switchHot }.Select(s => Row(s, $"{s.P50 / switchHot.P50:0.0}", $"{s.P50 / hot.P50:0.0}", $"{s.P50 / cold.P50:0.00}")));
        report.Line("The hot turn here is the second turn of a process just started, slower than a long-warm process's (part 1).");

        report.Line("");
        report.Line("#### 4. Quick turns and the cost of /clear");
        report.Line($"Alternating blocks of {QuickBlock}: quick turns back to back through the gateway (the chat process runs `--tools \"\"` and an " +
            "appended system prompt, and runs /clear after each turn, so a quick turn arriving right after another waits for that /clear; an untimed " +
            "quick turn leads each block in), then as " +
            "many hot full turns on the dashboard, then on a raw pipe with the chat launch: a turn, then `/clear` timed from writing it to its result.");
        report.Table(["turn", "p50 ms", "p99 ms", "mean ms", "p50 / hot full turn"],
            new[] { quick, quickHot, rawChat, rawClear }.Select(s => Row(s, $"{s.P50 / quickHot.P50:0.00}")));
        report.Line($"Quick turn p50 − (raw chat turn + raw /clear) p50: {quick.P50 - rawChat.P50 - rawClear.P50:+0.0;-0.0} ms.");

        report.Line("");
        var hotUnchanged = hotPidsBefore.Order().SequenceEqual(hotPidsAfter.Order());
        report.Line($"Checks: the hot gateway's processes (pids {string.Join(", ", hotPidsBefore)}) were {(hotUnchanged ? "the same from the first turn to the last" : $"RESTARTED: now {string.Join(", ", hotPidsAfter)}")} " +
            $"(parts 1, 2 and 4; new conversations cost a /clear, not a restart); those parts made {requestsAfterHotParts - requestsBefore:N0} conversation requests to the fake.");
        report.Check("the hot processes were never restarted", hotUnchanged);
        report.Check("every conversation switch restarted the process (with --resume)", switchRestarts == turns);
        report.Check("no hot turn after a switch restarted a process", hotAfterSwitchRestarts == 0);
        return report;
    }

    private static string[] Row(Samples s, params string[] more) => [s.Name, $"{s.P50:0.0}", $"{s.P99:0.0}", $"{s.Mean:0.0}", .. more];

    /// <summary>A request's system text without what differs by sandbox and by client: the sandbox's id in paths, the billing header.</summary>
    private static string Normalized(string systemText, KonsoleSandbox box) =>
        Regex.Replace(systemText.Replace(Path.GetFileName(box.Root), "<sandbox>"), "x-anthropic-billing-header:[^\n]*", "<billing header>");

    private static string Entrypoint(string systemText) =>
        Regex.Match(systemText, "cc_entrypoint=([^;\\s]+)") is { Success: true } m ? $"`{m.Groups[1].Value}`" : "(none)";

    private static string Listed(IEnumerable<string> items) => items.ToList() is { Count: > 0 } list ? string.Join(", ", list.Select(i => $"`{i}`")) : "none";

    /// <summary>The median size and shape of the conversation requests a side made to the fake.</summary>
    private static string[] RequestRow(string name, List<RecordedRequest> requests)
    {
        if (requests.Count == 0)
            return [name, "-", "-", "-", "-"];
        static double Median(IEnumerable<double> values)
        {
            var samples = new Samples("");
            foreach (var v in values)
                samples.Add(v);
            return samples.P50;
        }
        return
        [
            $"{name} (n={requests.Count})", $"{Median(requests.Select(r => (double)Encoding.UTF8.GetByteCount(r.Body))):N0}",
            $"{Median(requests.Select(r => (double)r.SystemText.Length)):N0}", $"{Median(requests.Select(r => (double)r.ToolCount)):0}",
            $"{Median(requests.Select(r => (double)r.MessageCount)):0}",
        ];
    }

    private static string Shell(string arg) => arg.Length == 0 ? "\"\"" : arg.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '$' or '*') ? JsonSerializer.Serialize(arg) : arg;

    private static async Task<double> Timed(Func<Task> turn)
    {
        var clock = Stopwatch.StartNew();
        await turn();
        return clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>The OS pids of a gateway's hot processes (full and chat), from its router.</summary>
    private static async Task<int[]> ProcessIdsAsync(GatewayPath gateway)
    {
        var router = ActorRegistry.For(gateway.Host.System).Get<RoleRouter>();
        var view = await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(10));
        return [.. view.Accounts.SelectMany(a => a.Status.Processes).Where(p => p.Mode != ProcessMode.Worker && p.ProcessId is not null).Select(p => p.ProcessId!.Value)];
    }

    /// <summary>One prompt through the gateway (HTTP POST, the SSE stream read to its end), timed; the result checked.</summary>
    private static async Task<double> GatewayTurnAsync(GatewayPath gateway, string path, string text)
    {
        var clock = Stopwatch.StartNew();
        var events = await gateway.EventsAsync(path, text, TurnTimeout);
        var ms = clock.Elapsed.TotalMilliseconds;
        Answers.Check(path, text, events[^1].Data);
        return ms;
    }

    /// <summary>A new CLI process for one prompt: timed from spawn to its result line, then stopped (untimed).</summary>
    private static async Task<double> ColdTurnAsync(ProcessLaunch launch, string text)
    {
        var result = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stderr = new StringBuilder();
        var clock = Stopwatch.StartNew();
        var process = CliProcess.Start(launch,
            line =>
            {
                if (StreamJsonParser.Parse(line) is { IsResult: true } frame)
                    result.TrySetResult(frame.Raw);
            },
            _ => { },
            line =>
            {
                lock (stderr)
                    stderr.AppendLine(line);
            });
        try
        {
            process.TryWrite(StreamJsonWriter.UserMessage(text, Prompt.NewId()));
            var first = await Task.WhenAny(result.Task, process.Exited).WaitAsync(TurnTimeout);
            var ms = clock.Elapsed.TotalMilliseconds;
            if (first != result.Task)
            {
                lock (stderr)
                    throw new InvalidOperationException($"a cold CLI exited with {process.Exited.Result} before its result: {stderr}");
            }
            Answers.Check("cold process", text, result.Task.Result);
            return ms;
        }
        finally
        {
            await process.StopAsync(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>bench/sdk-peer: the official Agent SDK driving the same CLI, run as a child process (node hot-turns.mjs).</summary>
    private static class SdkPeer
    {
        private const string Package = "@anthropic-ai/claude-agent-sdk";

        public sealed record Result(string SdkVersion, string NodeVersion, IReadOnlyList<double> SamplesMs, IReadOnlyList<string> CliArgv,
            IReadOnlyList<string> EnvAdded, string InitSummary);

        /// <summary>The peer's directory, its packages installed (<c>npm ci</c>) when missing or not the version its package.json pins.</summary>
        public static async Task<string> EnsureInstalledAsync()
        {
            var directory = Path.Combine(Repository.Root, "bench", "sdk-peer");
            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "package.json")));
            var pinned = manifest.RootElement.GetProperty("dependencies").GetProperty(Package).GetString();
            var installed = Path.Combine(directory, "node_modules", "@anthropic-ai", "claude-agent-sdk", "package.json");
            if (File.Exists(installed))
            {
                using var current = JsonDocument.Parse(await File.ReadAllTextAsync(installed));
                if (current.RootElement.GetProperty("version").GetString() == pinned)
                    return directory;
            }
            Console.Error.WriteLine($"[realcli] installing the SDK peer ({Package}@{pinned}): npm ci in {directory}");
            var (code, output, errors) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], directory, TimeSpan.FromMinutes(10));
            if (code != 0 || !File.Exists(installed))
                throw new InvalidOperationException($"`npm ci` in {directory} exited with {code}:\n{output}\n{errors}");
            return directory;
        }

        /// <summary>One block: a new query (a new CLI process), <paramref name="warmup"/> turns, then <paramref name="turns"/> timed ones.</summary>
        public static async Task<Result> RunAsync(string directory, string cli, string api, string configDir, string cwd, int turns, int warmup, bool presetPrompt)
        {
            var timeout = TimeSpan.FromSeconds(90) + TurnTimeout / 10 * (turns + warmup);
            string[] args =
            [
                "hot-turns.mjs", "--api", api, "--cli", cli, "--config-dir", configDir, "--cwd", cwd,
                "--turns", $"{turns}", "--warmup", $"{warmup}", "--turn-timeout-ms", $"{(int)TurnTimeout.TotalMilliseconds}",
                .. presetPrompt ? new[] { "--preset-prompt" } : [],
            ];
            var (code, output, errors) = await RunAsync("node", args, directory, timeout);
            var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
            if (code != 0 || line is null)
                throw new InvalidOperationException($"the SDK peer exited with {code}:\n{Tail(errors)}");
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var samples = root.GetProperty("samplesMs").EnumerateArray().Select(e => e.GetDouble()).ToList();
            if (samples.Count != turns)
                throw new InvalidOperationException($"the SDK peer reported {samples.Count} samples, not {turns}: {line[..Math.Min(line.Length, 300)]}");
            var argv = root.TryGetProperty("cliArgv", out var a) && a.ValueKind == JsonValueKind.Array
                ? a.EnumerateArray().Select(e => e.GetString() ?? "").ToList()
                : ["(not seen)"];
            var env = root.TryGetProperty("cliEnvAdded", out var e) && e.ValueKind == JsonValueKind.Array
                ? e.EnumerateArray().Select(v => v.GetString() ?? "").ToList()
                : ["(not seen)"];
            var init = root.TryGetProperty("init", out var i) && i.ValueKind == JsonValueKind.Object ? i.GetRawText() : "(not seen)";
            var (_, node, _) = await RunAsync("node", ["--version"], directory, TimeSpan.FromSeconds(30));
            return new Result(root.GetProperty("sdkVersion").GetString() ?? "?", node.Trim(), samples, argv, env, init);
        }

        private static async Task<(int Code, string Output, string Errors)> RunAsync(string program, string[] args, string directory, TimeSpan timeout)
        {
            var run = await ProgramRun.RunAsync(program, args, directory, timeout, "The realcli scenario needs Node.js and npm on PATH.");
            return (run.ExitCode, run.Output, run.Errors);
        }

        private static string Tail(string text) => text.Length <= 4000 ? text : "..." + text[^4000..];
    }
}
