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
        var starting = tracker.StartAsync(() =>
        {
            release.Task.Wait(Timeout); // the start is still under way when shutdown begins
            return CliProcess.Start(new ProcessLaunch("cat", [], new Dictionary<string, string?>(), Path.GetTempPath(), 1024),
                _ => { }, _ => { }, _ => { });
        }, TimeSpan.FromSeconds(2));

        var stopping = tracker.StopAllAsync();
        Assert.False(stopping.IsCompleted);
        release.SetResult();
        await stopping.WaitAsync(Timeout);

        var process = await starting;
        Assert.True(process.HasExited);
        Assert.Empty(tracker.LiveProcessIds);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            tracker.StartAsync(() => throw new InvalidOperationException("not run"), TimeSpan.Zero));
        Assert.Equal("the actor system is shutting down", refused.Message);
    }
}
