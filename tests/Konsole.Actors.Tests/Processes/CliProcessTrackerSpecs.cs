using Konsole.Actors.Processes;

namespace Konsole.Actors.Tests.Processes;

public sealed class CliProcessTrackerSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Shutdown_waits_for_a_start_under_way_stops_its_process_and_refuses_later_starts()
    {
        var tracker = new CliProcessTracker();
        var release = new TaskCompletionSource();
        var starting = await StartUnderWay(tracker, release.Task); // still under way when shutdown begins

        var stopping = tracker.StopAllAsync();
        Assert.False(stopping.IsCompleted);
        release.SetResult();
        await stopping.WaitAsync(Timeout);

        var process = await starting;
        Assert.True(process.HasExited);
        Assert.Empty(tracker.LiveProcessIds);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            tracker.StartAsync(() => throw new InvalidOperationException("not run"), TimeSpan.Zero, Timeout));
        Assert.Equal("the actor system is shutting down", refused.Message);
    }

    [Fact]
    public async Task A_start_waits_for_the_one_under_way_and_is_refused_when_shutdown_began_meanwhile()
    {
        var tracker = new CliProcessTracker();
        var release = new TaskCompletionSource();
        var first = await StartUnderWay(tracker, release.Task);
        var (second, secondRan) = StartCat(tracker);

        // The second start waits behind the first (starts run one after another on a thread of their own, not on the pool),
        // so shutdown, begun meanwhile, refuses it before it starts anything.
        var stopping = tracker.StopAllAsync();
        release.SetResult();
        await stopping.WaitAsync(Timeout);

        Assert.True((await first).HasExited);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => second);
        Assert.Equal("the actor system is shutting down", refused.Message);
        Assert.False(secondRan.IsCompleted);
        Assert.Empty(tracker.LiveProcessIds);
    }

    [Fact]
    public async Task A_start_cancelled_before_its_turn_came_is_not_made()
    {
        var tracker = new CliProcessTracker();
        var release = new TaskCompletionSource();
        var first = await StartUnderWay(tracker, release.Task);
        var cancel = new CancellationTokenSource();
        var (second, secondRan) = StartCat(tracker, cancel.Token);

        cancel.Cancel(); // its actor stopped while it waited behind the first
        release.SetResult();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.WaitAsync(Timeout));
        Assert.False(secondRan.IsCompleted);
        await first;
        await tracker.StopAllAsync().WaitAsync(Timeout);
        Assert.Empty(tracker.LiveProcessIds);
    }

    [Fact]
    public async Task As_many_processes_boot_at_a_time_as_there_are_cores_and_the_next_starts_once_one_has_printed()
    {
        var tracker = new CliProcessTracker();
        var booting = await Task.WhenAll(Enumerable.Range(0, Environment.ProcessorCount)
            .Select(_ => tracker.StartAsync(Cat, TimeSpan.FromSeconds(2), Timeout))); // cat prints nothing until it is fed
        var (next, nextRan) = StartCat(tracker);
        await Until(() => tracker.WaitingToBoot); // its turn came: from here on only a boot ending lets it run

        Assert.False(nextRan.IsCompleted);
        booting[0].TryWrite("booted\n"u8.ToArray()); // cat echoes it: its first output, and its boot is over
        await next.WaitAsync(Timeout);

        await tracker.StopAllAsync().WaitAsync(Timeout);
        Assert.Empty(tracker.LiveProcessIds);
    }

    /// <summary>A start that has begun and goes on until <paramref name="release"/> completes.</summary>
    private static async Task<Task<CliProcess>> StartUnderWay(CliProcessTracker tracker, Task release)
    {
        var running = new TaskCompletionSource();
        var start = tracker.StartAsync(() =>
        {
            running.SetResult();
            release.Wait(Timeout);
            return Cat();
        }, TimeSpan.FromSeconds(2), Timeout);
        await running.Task.WaitAsync(Timeout);
        return start;
    }

    /// <summary>A start of cat, and whether the start itself ran.</summary>
    private static (Task<CliProcess> Started, Task Ran) StartCat(CliProcessTracker tracker, CancellationToken cancel = default)
    {
        var ran = new TaskCompletionSource();
        var started = tracker.StartAsync(() =>
        {
            ran.SetResult();
            return Cat();
        }, TimeSpan.FromSeconds(2), Timeout, cancel);
        return (started, ran.Task);
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not so within {Timeout.TotalSeconds:0}s");
            await Task.Delay(10);
        }
    }

    private static CliProcess Cat() =>
        CliProcess.Start(new ProcessLaunch("cat", [], new Dictionary<string, string?>(), Path.GetTempPath(), 1024), _ => { }, _ => { }, _ => { });
}
