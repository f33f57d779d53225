using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using Konsole.Testing;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Bench;

/// <summary>
/// Scenarios 2 and 3: 100 turns streaming at once, each on a CLI process of its own (worker sessions), read as SSE,
/// against 100 raw pipes doing the same; and, while the gateway streams, role swaps measured one by one.
/// </summary>
public static class StreamingBench
{
    private const int Streams = 100;

    public static async Task<Report> RunAsync(int chunks, int rounds = 3)
    {
        var prompt = $"[[chunks:{chunks}:0]] stream";
        // A warm-up turn long enough that the supervisor's code (and the pipes' and the client's) is compiled and tiered up
        // before the measured turn.
        const string warm = "[[chunks:500:0]] warm";
        using var rawBox = KonsoleSandbox.Create(1);
        using var gatewayBox = KonsoleSandbox.Create(2);
        var cli = NicedFakeClaude(rawBox.Root);

        // Raw: 100 pipes.
        var launch = Launches.Full(rawBox.Settings(cli));
        var pipes = await Task.WhenAll(Enumerable.Range(0, Streams).Select(_ => RawPipe.StartAsync(launch)));
        await Task.WhenAll(pipes.Select(p => p.TurnAsync(warm)));

        // Gateway: 100 worker sessions, 50 worker processes per account.
        await using var gateway = await GatewayPath.StartAsync(gatewayBox.Hocon(cli, extraHocon: """
            konsole.sessions.max-workers = 50
            konsole.queue.max-depth = 1000
            konsole.gateway.max-streams = 1000
            """));
        var client = gateway.Host.Client;
        var sessions = new List<string>();
        for (var i = 0; i < Streams; i++)
        {
            var created = await client.PostAsJsonAsync("/api/session", new { type = "worker" });
            sessions.Add(JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!);
        }
        foreach (var batch in sessions.Chunk(10)) // ten processes starting at a time, as a host taking on work would
            await Task.WhenAll(batch.Select(s => gateway.TurnAsync($"/api/session/{s}/prompt", warm)));
        var router = ActorRegistry.For(gateway.Host.System).Get<RoleRouter>();
        var before = await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(10));

        // The same swaps with nothing else running, for comparison.
        var idleSwaps = new Samples("swap, idle");
        using (var idle = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
            await SwapWhileAsync(router, idleSwaps, idle.Token);

        // Rounds, each the raw pipes' turn and then the gateway's (swapping meanwhile), so the machine's drift falls on both;
        // the first, untimed, brings both back from idle.
        using var readers = await SseReaders.StartAsync(client.BaseAddress!, prompt, sessions);
        var swaps = new Samples("swap");
        var swapsDuringGc = new Samples("swap during a GC");
        var results = new List<(double RawRate, SseReaders.Outcome Gateway, GcDuring Gc)>();
        for (var round = 0; round <= rounds; round++)
        {
            var rawClock = Stopwatch.StartNew();
            var rawLines = (await Task.WhenAll(pipes.Select(p => p.TurnAsync(prompt)))).Sum();
            var rawRate = rawLines / rawClock.Elapsed.TotalSeconds;
            if (pipes.FirstOrDefault(p => !Answers.Succeeded(p.LastResult)) is { } unanswered)
                throw new InvalidOperationException($"a raw pipe's turn did not end with a successful result: {unanswered.LastResult ?? "none"}");
            using var streaming = new CancellationTokenSource();
            var swapping = round == 0
                ? SwapWhileAsync(router, new Samples("warm-up"), streaming.Token)
                : SwapWhileAsync(router, swaps, streaming.Token, swapsDuringGc);
            Console.Error.WriteLine(round == 0 ? "streaming: warming up" : $"streaming: measuring the gateway, round {round}");
            var gc = GcDuring.Start();
            var outcome = await readers.GoAsync();
            var gcDuring = gc.Stop();
            await streaming.CancelAsync();
            await swapping;
            if (round > 0)
                results.Add((rawRate, outcome, gcDuring));
        }
        await Task.WhenAll(pipes.Select(p => p.DisposeAsync().AsTask()));
        var after = await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(10));
        var restarted = after.Accounts.SelectMany(a => a.Status.Processes).Sum(p => p.Restarts)
            - before.Accounts.SelectMany(a => a.Status.Processes).Sum(p => p.Restarts);
        var pidsBefore = before.Accounts.SelectMany(a => a.Status.Processes).Where(p => p.Mode != ProcessMode.Worker).Select(p => p.ProcessId).ToHashSet();
        var pidsAfter = after.Accounts.SelectMany(a => a.Status.Processes).Where(p => p.Mode != ProcessMode.Worker).Select(p => p.ProcessId).ToHashSet();

        var ratios = results.Select(r => r.Gateway.Events / r.Gateway.Seconds / r.RawRate).Order().ToArray();
        var medianRatio = ratios[ratios.Length / 2];
        var rates = results.Select(r => r.Gateway.Events / r.Gateway.Seconds).Order().ToArray();
        var medianRate = rates[rates.Length / 2];
        var failed = results.SelectMany(r => r.Gateway.Failed).ToList();
        var report = new Report("Streaming: 100 SSE streams at once, and role swaps under that load (scenarios 2 and 3)");
        report.Line($"{Streams} turns of {chunks} assistant chunks each (plus the turn's other lines), each on a CLI process of its own, all at once; " +
            $"{rounds} rounds after an untimed one, each the raw pipes' turn and then the gateway's.");
        report.Table(["round", "raw pipes: lines/s", "gateway: events/s", "vs raw", "p50 event delay ms", "p99 event delay ms",
                "gateway's GC pauses: ms (% of its time)", "GCs gen0/1/2"],
            results.Select((r, i) => new[]
            {
                $"{i + 1}", $"{r.RawRate:N0}", $"{r.Gateway.Events / r.Gateway.Seconds:N0}", $"{r.Gateway.Events / r.Gateway.Seconds / r.RawRate:0.000}",
                $"{r.Gateway.DelayP50:0.0}", $"{r.Gateway.DelayP99:0.0}",
                $"{r.Gc.Paused.TotalMilliseconds:0} ({r.Gc.Paused / r.Gc.Elapsed:0.0%})", string.Join("/", r.Gc.Collections),
            }).ToArray());
        report.Line($"Median: {medianRate:N0} events/s, {medianRatio:0.000} × raw. Lines or events per turn: {results[0].Gateway.Events:N0} through the gateway.");
        report.Line($"Role swaps during the gateway's turns: {swaps.Count}, p50 {swaps.P50:0.000} ms, p99 {swaps.P99:0.000} ms (an Ask round trip to the router); " +
            $"processes restarted meanwhile: {restarted}; the full and chat processes' pids {(pidsBefore.SetEquals(pidsAfter) ? "unchanged" : "CHANGED")}. " +
            $"The same swaps with the machine idle (before the streaming): {idleSwaps.Count}, p50 {idleSwaps.P50:0.000} ms, p99 {idleSwaps.P99:0.000} ms.");
        report.Line(swapsDuringGc.Count == 0
            ? "No swap under the load overlapped a garbage collection of the gateway's process."
            : $"Of the swaps under the load, {swapsDuringGc.Count} ({(double)swapsDuringGc.Count / swaps.Count:0.0%}) overlapped a garbage collection " +
              $"of the gateway's process: p50 {swapsDuringGc.P50:0.000} ms, shortest {swapsDuringGc.Percentile(0):0.000} ms.");
        foreach (var stream in failed)
            report.Line($"- a stream that did not end with its result: {stream}");
        report.Check("every stream ended with its result", failed.Count == 0);
        report.Verdict("≥ 100,000 events/s (median)", medianRate >= 100_000);
        report.Verdict("≥ 0.5 × raw (median)", medianRatio >= 0.5);
        report.Verdict("swap p99 < 1 ms", swaps.P99 < 1);
        report.Verdict("0 processes restarted by swaps", restarted == 0 && pidsBefore.SetEquals(pidsAfter));
        return report;
    }

    /// <summary>This process's garbage collections while the gateway (in it) serves the streams.</summary>
    private sealed record GcDuring(TimeSpan Paused, TimeSpan Elapsed, int[] Collections)
    {
        public static Clock Start() => new();

        public sealed class Clock
        {
            private readonly TimeSpan _paused = GC.GetTotalPauseDuration();
            private readonly long _started = Stopwatch.GetTimestamp();
            private readonly int[] _collections = Counts();

            public GcDuring Stop() => new(GC.GetTotalPauseDuration() - _paused, Stopwatch.GetElapsedTime(_started),
                Counts().Zip(_collections, (now, then) => now - then).ToArray());
        }

        private static int[] Counts() => [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
    }

    /// <param name="duringGc">Also gets each swap that a garbage collection of this process (the gateway's) overlapped.</param>
    private static async Task SwapWhileAsync(IActorRef router, Samples swaps, CancellationToken stop, Samples? duringGc = null)
    {
        while (!stop.IsCancellationRequested)
        {
            var collections = GC.CollectionCount(0);
            var clock = Stopwatch.StartNew();
            await router.Ask<RolesChanged>(SwapRoles.Instance, TimeSpan.FromSeconds(60));
            swaps.Add(clock.Elapsed.TotalMilliseconds);
            if (GC.CollectionCount(0) != collections)
                duringGc?.Add(clock.Elapsed.TotalMilliseconds);
            await Task.Delay(5);
        }
    }

    /// <summary>
    /// FakeClaude at the lowest CPU priority: 100 of them writing as fast as their pipes take it would otherwise get 100
    /// shares of the 2 cores against the supervisor's few threads, and the figures would measure the scheduler. (Real
    /// CLIs mostly wait for the API.) Both the raw pipes and the gateway run on it. Where the kernel's autogroups are on (as
    /// here) the nice only ranks a fake within its own session (each CLI leads one), and each session weighs as much as the
    /// supervisor's: lowering the sessions' own priority too was measured and not kept (BENCHMARKS.md, sections 2 and 3).
    /// </summary>
    private static string NicedFakeClaude(string directory)
    {
        var script = Path.Combine(directory, "fake-claude-niced");
        // Compiled fully at first call (no tiering): a hundred fakes re-jitting their hot code in the background while the
        // measured turns run would take most of the machine, and the figures would measure the JIT.
        File.WriteAllText(script, $"#!/bin/sh\nDOTNET_TieredCompilation=0 exec nice -n 19 '{FakeClaudeCli.Path}' \"$@\"\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return script;
    }
}
