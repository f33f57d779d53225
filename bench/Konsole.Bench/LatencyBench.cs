using System.Diagnostics;
using Konsole.Actors.Durability;
using Konsole.Testing;

namespace Konsole.Bench;

/// <summary>
/// Scenario 1: turn latency on FakeClaude, three ways, interleaved round by round so the machine's noise falls on all
/// of them alike: a raw CliWrap pipe, the actor path, the HTTP+SSE gateway (sessions journaled in SQLite).
/// </summary>
public static class LatencyBench
{
    private static readonly string InMemoryJournal = PersistenceSetup.InMemory.Root.ToString();

    /// <summary>FakeClaude's answers leave the conversation out: every turn has the same lines, however many came before.</summary>
    private const string FixedSize = "[[no-history]]";

    public static async Task<Report> RunAsync(int turns, int warmup)
    {
        using var rawBox = KonsoleSandbox.Create(1);
        using var actorBox = KonsoleSandbox.Create(2);
        using var gatewayBox = KonsoleSandbox.Create(2);
        using var memoryBox = KonsoleSandbox.Create(2);
        await using var raw = await RawPipe.StartAsync(Launches.Full(rawBox.Settings(FakeClaudeCli.Path)));
        await using var actors = await ActorPath.StartAsync(actorBox.Settings(FakeClaudeCli.Path));
        await using var gateway = await GatewayPath.StartAsync(gatewayBox.Hocon(FakeClaudeCli.Path));
        // The same gateway with the journal in memory: what the SQLite writes cost, apart from HTTP.
        await using var inMemory = await GatewayPath.StartAsync(memoryBox.Hocon(FakeClaudeCli.Path, extraHocon: InMemoryJournal), "gateway, journal in memory");
        var floor = new HttpFloor(inMemory.Host.Client);
        ITurnPath[] paths = [raw, actors, gateway, inMemory, floor];
        var samples = paths.ToDictionary(p => p.Name, p => new Samples(p.Name));
        var order = paths.ToArray();
        var random = new Random(20261201); // the same orders in every run

        for (var round = -warmup; round < turns; round++)
        {
            if (round == 0)
            {
                foreach (var path in paths)
                    await path.StartOverAsync();
            }
            // A new order each round, so no path always runs right after another's work (a rotation kept each path's predecessor
            // in most rounds: the raw pipe nearly always after GET /healthz).
            random.Shuffle(order);
            foreach (var path in order)
            {
                var text = $"turn {round} {FixedSize}";
                var clock = Stopwatch.StartNew();
                await path.TurnAsync(text);
                var elapsed = clock.Elapsed.TotalMilliseconds;
                if (path != floor)
                    Answers.Check(path.Name, Konsole.Testing.FakeClaude.Directives.Parse(text).Text, path.LastResult); // FakeClaude echoes it without its directives
                if (round >= 0)
                    samples[path.Name].Add(elapsed);
            }
        }

        var rawSamples = samples[raw.Name];
        var intervals = paths.Where(p => p != raw).ToDictionary(p => p.Name, p => samples[p.Name].P50RatioInterval(rawSamples));
        var report = new Report("Turn latency on FakeClaude (scenario 1)");
        report.Line($"{turns} turns per path after {warmup} warm-up rounds, interleaved in a new random order each round, each path in a " +
            "conversation of its own begun after the warm-up; every turn the same seven short lines (FakeClaude's [[no-history]]: its answer " +
            "does not echo the conversation), every answer checked. The HTTP floor is one GET /healthz on the gateway: what any turn over " +
            "HTTP pays at least.");
        report.Table(["path", "p50 ms", "p99 ms", "mean ms", "p50 / raw", "its 95 % interval", "p99 / raw", "target"],
            paths.Select(p => samples[p.Name]).Select(s => new[]
            {
                s.Name, $"{s.P50:0.000}", $"{s.P99:0.000}", $"{s.Mean:0.000}", $"{s.P50 / rawSamples.P50:0.00}",
                intervals.TryGetValue(s.Name, out var interval) ? $"{interval.Low:0.00} to {interval.High:0.00}" : "",
                $"{s.P99 / rawSamples.P99:0.00}",
                s.Name == actors.Name ? "≤ 1.10 × raw" : s.Name == gateway.Name ? "≤ 1.5 × raw" : "",
            }));
        report.Verdict("actor path p50 ≤ 1.10 × raw", 1.10, intervals[actors.Name]);
        report.Verdict("gateway p50 ≤ 1.5 × raw", 1.5, intervals[gateway.Name]);
        return report;
    }
}
