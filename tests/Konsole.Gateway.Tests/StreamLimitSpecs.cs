using System.Net;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>konsole.gateway.max-streams: streams open at once, prompts and followers alike.</summary>
public sealed class StreamLimitSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    protected override string ExtraHocon => "konsole.gateway.max-streams = 2";

    [Fact]
    public async Task Beyond_the_limit_a_stream_gets_429_at_once_and_a_closed_one_frees_its_place()
    {
        var first = await GetEventsAsync("/api/events");
        await using var second = await PostPromptAsync("/sessions/ui-1/hot-prompt", $"{Long} holds a place");

        var refused = await Client.GetAsync("/api/events");

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Contains("too_many_streams", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/api/accounts")).StatusCode); // other requests are not limited
        await first.DisposeAsync();
        await using var third = await AwaitPlaceAsync(DateTime.UtcNow + Timeout);
        Assert.Equal(HttpStatusCode.OK, third.Response.StatusCode);
    }

    /// <summary>The server notices a closed stream a moment after the client closed it.</summary>
    private async Task<SseStream> AwaitPlaceAsync(DateTime deadline)
    {
        while (true)
        {
            var stream = await GetEventsAsync("/api/events");
            if (stream.Response.StatusCode == HttpStatusCode.OK)
                return stream;
            await stream.DisposeAsync();
            Assert.True(DateTime.UtcNow < deadline, "the closed stream's place was never freed");
            await Task.Delay(20);
        }
    }
}
