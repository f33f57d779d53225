using System.Net;
using System.Net.Sockets;
using System.Text;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>konsole.gateway.max-streams: streams open at once, prompts and followers alike.</summary>
public sealed class StreamLimitSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    protected override string ExtraHocon => "konsole.gateway.max-streams = 2\nkonsole.gateway.keep-alive = 500ms";

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

    /// <summary>
    /// A client gone without the server seeing it (a laptop closed, a NAT that forgot the connection; here: a reset the
    /// server does not read, its input buffer full of pipelined bytes) on a follower of an idle session: nothing is ever
    /// written to it, so only a keep-alive finds it gone and frees its place.
    /// </summary>
    [Fact]
    public async Task An_idle_follower_whose_client_vanished_unseen_gives_its_place_back()
    {
        await RunAsync("/sessions/ui-idle/hot-prompt", "then nothing more");

        for (var i = 0; i < 2; i++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Client.BaseAddress!.Port));
            await socket.SendAsync(Encoding.ASCII.GetBytes(
                $"GET /api/session/ui-idle/events?after=1000000 HTTP/1.1\r\nHost: 127.0.0.1:{Client.BaseAddress.Port}\r\n\r\n"));
            Assert.StartsWith("HTTP/1.1 200 OK", await ReadHeadAsync(socket));
            await FillServerInputAsync(socket);
            socket.LingerState = new LingerOption(true, 0); // closing sends a reset
        }

        await using var next = await AwaitPlaceAsync(DateTime.UtcNow + Timeout);
        Assert.Equal(HttpStatusCode.OK, next.Response.StatusCode);
    }

    private static async Task<string> ReadHeadAsync(Socket socket)
    {
        var buffer = new byte[4096];
        var head = new StringBuilder();
        using var cancel = new CancellationTokenSource(Timeout);
        while (!head.ToString().Contains("\r\n\r\n"))
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            Assert.True(read > 0, $"the server closed the connection after: {head}");
            head.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        return head.ToString();
    }

    /// <summary>
    /// Sends bytes (a pipelined next request, to the server) until the server's transport stops reading the connection:
    /// past Kestrel's request buffer (1 MiB) it waits for the request to end first, and the socket's buffers fill.
    /// </summary>
    private static async Task FillServerInputAsync(Socket socket)
    {
        socket.Blocking = false;
        var junk = new byte[64 * 1024];
        Array.Fill(junk, (byte)'x');
        var sent = 0L;
        var stalled = 0;
        using var cancel = new CancellationTokenSource(Timeout);
        while (sent < 2 * 1024 * 1024 || stalled < 20) // at 50 ms a try, a second without a byte taken
        {
            try
            {
                sent += socket.Send(junk);
                stalled = 0;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
                stalled++;
                await Task.Delay(50, cancel.Token);
            }
        }
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
