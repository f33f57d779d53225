using System.Text;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Microsoft.AspNetCore.Http;

namespace Konsole.Gateway.Tests;

/// <summary>The harness's SSE client: timeouts that leave the stream usable, deadlines already past, disposal mid-read.</summary>
public sealed class SseStreamSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_timeout_loses_no_event_a_past_deadline_never_waits_for_ever_and_disposing_mid_read_is_quiet()
    {
        var send = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (app, url) = await LoopbackServer.StartAsync(async context =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.Body.FlushAsync();
            await send.Task.WaitAsync(context.RequestAborted);
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes("event: first\ndata: 1\n\n"));
            await context.Response.Body.FlushAsync();
            await Task.Delay(System.Threading.Timeout.Infinite, context.RequestAborted);
        });
        await using var _ = app;
        using var client = new HttpClient();
        var sse = await SseStream.OpenAsync(client, new HttpRequestMessage(HttpMethod.Get, url), Timeout);

        await Assert.ThrowsAsync<TimeoutException>(() => sse.NextAsync(TimeSpan.FromMilliseconds(-1.5)).WaitAsync(Timeout)); // -1 ms would mean "for ever"
        await Assert.ThrowsAsync<TimeoutException>(() => sse.NextAsync(TimeSpan.FromMilliseconds(-5)));
        await Assert.ThrowsAsync<TimeoutException>(() => sse.NextAsync(TimeSpan.FromMilliseconds(100)));
        send.SetResult();
        var first = await sse.NextAsync(Timeout); // the read the timeouts left waiting
        await Assert.ThrowsAsync<TimeoutException>(() => sse.NextAsync(TimeSpan.FromMilliseconds(100)));

        Assert.Equal(("first", "1"), (first?.Event, first?.Data));
        await sse.DisposeAsync(); // with that read still waiting
    }
}
