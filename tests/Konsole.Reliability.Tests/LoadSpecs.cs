using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Reliability.Tests;

/// <summary>
/// Fault 5: bursts of ten times the queue's capacity at once. It measures the managed heap of the whole test process, so it
/// runs alone, after the other specs of this assembly (in parallel with it, a spec holding 8 MB lines made it see 42 MB more).
/// </summary>
[Collection(Alone.Name)]
public sealed class LoadSpecs(ITestOutputHelper output) : GatewayFault(output, "konsole.queue.max-depth = 64\nkonsole.gateway.max-streams = 1000")
{
    private const int Burst = 640; // 10 x konsole.queue.max-depth, all for the quickturn account

    [Fact]
    public async Task A_burst_of_ten_times_the_queue_gets_429s_bounded_memory_and_loses_nothing_accepted()
    {
        // Both paths (accepted, refused) run once first, so the bursts meet a warm host, not its just-in-time compiler.
        await BurstAsync(2 * 64);
        var baseline = Retained();
        var first = await BurstAsync();
        var afterFirst = Retained();
        var second = await BurstAsync();
        var afterSecond = Retained();

        foreach (var burst in new[] { first, second })
        {
            Assert.Equal(Burst, burst.Accepted + burst.Refused); // each got one or the other
            Assert.True(burst.Accepted > 64, $"only {burst.Accepted} accepted");
            Assert.True(burst.Refused > 0, "the queue bound never refused anything");
            Assert.Equal(burst.Accepted, burst.Completed); // nothing accepted was lost
            Assert.Equal(burst.Refused, burst.WithRetryAfter);
        }
        // What a burst leaves behind does not pile up: the second leaves about what the first did.
        Assert.True(afterSecond - afterFirst < 16 * 1024 * 1024, $"the second burst kept {(afterSecond - afterFirst) / 1048576} MB more");
        Output.WriteLine($"FIGURES burst: twice {Burst} quick turns at once on one account (queue bound 64): " +
            $"{first.Accepted} and {second.Accepted} accepted, every one completed; {first.Refused} and {second.Refused} refused with 429 + Retry-After; " +
            $"{first.Seconds:0.0}s and {second.Seconds:0.0}s; managed heap after a collection {baseline / 1048576} MB before, " +
            $"{afterFirst / 1048576} MB after the first, {afterSecond / 1048576} MB after the second; peak during them {Math.Max(first.Peak, second.Peak) / 1048576} MB");
    }

    [Fact]
    public async Task A_session_that_streams_far_more_than_its_replay_buffer_keeps_only_the_buffers_bytes()
    {
        const int Turns = 48;
        const int Megabyte = 1 << 20;
        await HotPromptAsync("warm-up", "[[huge:1000]] warm up");
        var baseline = Retained();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Turns; i++)
            await HotPromptAsync("long-output", $"[[huge:{Megabyte}]] turn {i}"); // 1 MB of text in each turn's assistant frame
        var seconds = clock.Elapsed.TotalSeconds;
        var after = Retained();

        await using var events = await SseStream.OpenAsync(Host.Client, new HttpRequestMessage(HttpMethod.Get, "/api/session/long-output/events?after=0"), Timeout);
        var firstKept = long.Parse(events.Response.Headers.GetValues("Konsole-First-Event-Id").Single(), System.Globalization.CultureInfo.InvariantCulture);
        // The default bound (konsole.sessions.replay-buffer-bytes = 16MiB) holds the last 16 of the 48 MB; the rest was let go.
        Assert.True(after - baseline < 24L * Megabyte, $"the session kept {(after - baseline) / Megabyte} MB");
        Assert.True(firstKept > 1, "the buffer gave nothing up");
        Output.WriteLine($"FIGURES replay bytes: {Turns} turns of 1 MB each in one session ({seconds:0.0}s), replay buffer bound 16 MiB: " +
            $"managed heap after a collection {baseline / Megabyte} MB before, {after / Megabyte} MB after; the oldest event still kept #{firstKept}");
    }

    private async Task HotPromptAsync(string session, string prompt)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/sessions/{session}/hot-prompt") { Content = JsonContent.Create(new { prompt }) };
        await using var stream = await SseStream.OpenAsync(Host.Client, request, Timeout);
        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);
        Assert.Equal("result", (await stream.ReadToEndAsync(Timeout))[^1].Event);
    }

    private async Task<BurstOutcome> BurstAsync(int burst = Burst)
    {
        // A client of its own, let go afterwards, so its connection pool is not counted as the host's memory.
        using var client = new HttpClient { BaseAddress = Host.Client.BaseAddress, Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        var clock = Stopwatch.StartNew();
        long peak = 0;
        var outcomes = await Task.WhenAll(Enumerable.Range(0, burst).Select(async n =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/quick-turn") { Content = JsonContent.Create(new { prompt = $"[[chunks:2:1]] b{n}" }) };
            await using var stream = await SseStream.OpenAsync(client, request, Timeout);
            if (stream.Response.StatusCode != HttpStatusCode.OK)
                return ((int)stream.Response.StatusCode, false, stream.Response.Headers.RetryAfter is not null);
            var events = await stream.ReadToEndAsync(Timeout);
            Interlocked.Exchange(ref peak, Math.Max(Interlocked.Read(ref peak), GC.GetTotalMemory(forceFullCollection: false)));
            return (200, events[^1].Event == "result", false);
        }));
        return new BurstOutcome(
            outcomes.Count(o => o.Item1 == 200), outcomes.Count(o => o.Item1 == 429), outcomes.Count(o => o.Item2), outcomes.Count(o => o.Item3),
            clock.Elapsed.TotalSeconds, peak);
    }

    private static long Retained()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private sealed record BurstOutcome(int Accepted, int Refused, int Completed, int WithRetryAfter, double Seconds, long Peak);
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Alone
{
    public const string Name = "runs alone";
}
