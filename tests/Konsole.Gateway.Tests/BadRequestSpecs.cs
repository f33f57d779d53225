using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>Bad requests of every kind: each gets its 4xx as problem+json, never a 5xx.</summary>
public sealed class BadRequestSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    private static readonly string LongId = new('x', 10 * 1024);

    protected override string ExtraHocon => "konsole.gateway.max-prompt-bytes = 1024";

    public static TheoryData<string, string, string?, int> Cases() => new()
    {
        // Prompt bodies
        { "POST", "/sessions/ui-1/hot-prompt", "{not json", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", "", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", "[]", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", "\"prompt\"", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", "{}", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", """{"prompt": 42}""", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", """{"prompt": null}""", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", """{"prompt": ["a"]}""", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", """{"prompt": ""}""", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", """{"prompt": "   \n "}""", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", """{"prompt": "ok"} trailing""", 400 },
        { "POST", "/sessions/ui-1/hot-prompt", $$"""{"prompt": "{{new string('x', 1025)}}"}""", 413 },
        { "POST", "/sessions/ui-1/hot-prompt", $$"""{"prompt": "{{string.Concat(Enumerable.Repeat("é", 513))}}"}""", 413 },
        { "POST", "/api/quick-turn", $$"""{"prompt": "{{new string('y', 20_000)}}"}""", 413 },
        { "POST", "/api/quick-turn", "{\"prompt\": \"\\ud800\"", 400 },
        { "POST", "/api/quick-turn", "{\"prompt\": \"a lone surrogate \\ud800\"}", 400 },
        { "POST", "/api/quick-turn", "{\"\\ud800xx\": \"hi\"}", 400 }, // a name that cannot be decoded: was a 500
        { "POST", "/sessions/ui-1/hot-prompt", "{\"prompt\": \"hi\", \"\\udfff\": 1}", 400 },
        { "POST", "/api/session/no-such-session/prompt", """{"prompt": "hi"}""", 404 },
        // Odd ids
        { "POST", "/sessions/..%2Fx/hot-prompt", """{"prompt": "hi"}""", 400 },
        { "POST", "/sessions/%20/hot-prompt", """{"prompt": "hi"}""", 400 },
        { "POST", $"/sessions/{LongId}/hot-prompt", """{"prompt": "hi"}""", 400 },
        { "GET", $"/api/session/{LongId}", null, 404 }, // a look-up's: no such session (only a new one's id is refused as invalid)
        { "GET", "/api/session/..%2F..%2Fetc", null, 404 },
        { "DELETE", "/api/session/a%20b", null, 404 },
        { "POST", "/api/session/a%20b/prompt", """{"prompt": "hi"}""", 404 },
        { "GET", "/api/session/unknown-id", null, 404 },
        { "DELETE", "/api/session/unknown-id", null, 404 },
        { "POST", "/api/session/unknown-id/interrupt", null, 404 },
        { "GET", "/api/session/unknown-id/events", null, 404 },
        { "GET", "/api/session/unknown-id/events?after=abc", null, 400 },
        { "GET", "/api/session/unknown-id/events?after=-1", null, 400 },
        // Session creation
        { "POST", "/api/session", "", 400 },
        { "POST", "/api/session", "{}", 400 },
        { "POST", "/api/session", """{"type": "bogus"}""", 400 },
        { "POST", "/api/session", """{"type": 3}""", 400 },
        { "POST", "/api/session", """{"type": "Full, Chat"}""", 400 },
        { "POST", "/api/session", """{"type": "chat", "provider": "openai"}""", 400 },
        { "POST", "/api/session", """{"type": "chat", "model": "claude sonnet"}""", 400 },
        { "POST", "/api/session", """{"type": "chat", "model": ""}""", 400 },
        { "POST", "/api/session", """{"type": "chat", "model": 4}""", 400 },
        { "POST", "/api/session", """{"type": "chat", "model": "--tools"}""", 400 },
        { "POST", "/api/session", $$"""{"type": "chat", "model": "{{new string('m', 201)}}"}""", 400 },
        { "POST", "/api/session", "null", 400 },
        { "POST", "/api/session", "{\"\\ud800\": 1}", 400 },
        // Accounts
        { "POST", "/api/accounts/switch", """{"dashboard": "nobody"}""", 404 },
        { "POST", "/api/accounts/switch", """{"dashboard": 5}""", 400 },
        { "POST", "/api/accounts/switch", "not json", 400 },
        { "POST", "/api/accounts/switch", """{"dashbord": "alpha"}""", 400 },
        { "POST", "/api/accounts/switch", """{"dashboard": null}""", 400 },
        { "POST", "/api/accounts/switch", """{"Dashboard": "alpha"}""", 400 },
        { "POST", "/api/accounts/switch", "{\"\\ud800\": 1}", 400 },
        { "POST", "/api/accounts/nobody/refresh", null, 404 },
        // Wrong methods and paths
        { "PUT", "/api/accounts", null, 405 },
        { "DELETE", "/api/accounts", null, 405 },
        { "GET", "/api/quick-turn", null, 405 },
        { "GET", "/sessions/ui-1/hot-prompt", null, 405 },
        { "PATCH", "/api/session/x", null, 405 },
        { "GET", "/api/nothing-here", null, 404 },
        { "GET", "/", null, 404 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_bad_request_gets_its_4xx_problem(string method, string path, string? body, int status)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");

        var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(status == (int)response.StatusCode, $"{method} {path[..Math.Min(80, path.Length)]}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("type").GetString()));
    }

    [Theory]
    [InlineData("GET", "/api/nothing-here", 404, "text/event-stream")]
    [InlineData("PUT", "/api/accounts", 405, "text/event-stream")]
    [InlineData("GET", "/", 404, "text/html")]
    [InlineData("POST", "/api/session/no-such-session/prompt", 404, "text/event-stream")]
    public async Task The_problem_is_json_whatever_the_client_accepts(string method, string path, int status, string accept)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent("""{"prompt": "hi"}""", Encoding.UTF8, "application/json") };
        request.Headers.Accept.ParseAdd(accept); // an EventSource sends text/event-stream

        var response = await Client.SendAsync(request);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(status, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task A_prompt_of_invalid_utf8_is_a_400_not_a_500()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/quick-turn")
        {
            Content = new ByteArrayContent([.. "{\"prompt\": \""u8, 0xff, 0xfe, 0xc3, .. "\"}"u8]) { Headers = { ContentType = new("application/json") } },
        };

        var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("invalid UTF-8", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_body_larger_than_any_prompt_is_refused_before_it_is_read()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/sessions/ui-1/hot-prompt")
        {
            Content = new ByteArrayContent(new byte[1024 * 1024]) { Headers = { ContentType = new("application/json") } },
        };

        var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>A client that resets its connection halfway through its body left: there is no one to answer, and nothing failed.</summary>
    [Fact]
    public async Task A_client_that_leaves_while_its_body_is_read_is_no_error()
    {
        using var own = KonsoleSandbox.Create(1);
        var log = new StringWriterOutput();
        await using var host = await GatewayHost.StartAsync(own.Hocon(FakeClaudeCli.Path), log);
        var port = host.Client.BaseAddress!.Port;
        using var ended = new ConnectionsEnded(port);
        string[] paths = ["/sessions/ui-1/hot-prompt", "/api/quick-turn", "/api/session", "/api/accounts/switch"];

        foreach (var path in paths)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            await socket.SendAsync(Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" +
                "Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"));
            await AwaitContinueAsync(socket); // the endpoint reads the body now
            await socket.SendAsync("{\"prompt\": \"cut short"u8.ToArray());
            socket.LingerState = new LingerOption(true, 0); // closing sends a reset
        }

        await ended.AwaitAsync(paths.Length, Timeout);
        Assert.DoesNotContain(" Error] ", log.Text);
        Assert.DoesNotContain(" Critical] ", log.Text);
    }

    private static async Task AwaitContinueAsync(Socket socket)
    {
        var buffer = new byte[256];
        var answer = "";
        using var cancel = new CancellationTokenSource(Timeout);
        while (!answer.EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            Assert.True(read > 0, $"the server closed the connection after: {answer}");
            answer += Encoding.ASCII.GetString(buffer, 0, read);
        }
        Assert.StartsWith("HTTP/1.1 100 Continue", answer);
    }

    /// <summary>Counts the connections to the gateway on a port that ended (Kestrel's own metric, once a connection is done with).</summary>
    private sealed class ConnectionsEnded : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly SemaphoreSlim _ended = new(0);

        public ConnectionsEnded(int port)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument is { Meter.Name: "Microsoft.AspNetCore.Server.Kestrel", Name: "kestrel.connection.duration" })
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<double>((_, _, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag is { Key: "server.port", Value: int on } && on == port)
                        _ended.Release();
                }
            });
            _listener.Start();
        }

        public async Task AwaitAsync(int count, TimeSpan timeout)
        {
            for (var i = 0; i < count; i++)
                Assert.True(await _ended.WaitAsync(timeout), $"{i} of {count} connections ended");
        }

        public void Dispose()
        {
            _listener.Dispose();
            _ended.Dispose();
        }
    }

    [Fact]
    public async Task After_all_that_the_gateway_still_serves_prompts()
    {
        foreach (var (method, path, body, _) in Cases().Select(c => ((string)c[0], (string)c[1], (string?)c[2], (int)c[3])))
        {
            var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null)
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            Assert.True((int)(await Client.SendAsync(request)).StatusCode < 500);
        }

        Assert.Equal("echo: still here", ResultText(await RunAsync("/sessions/ui-1/hot-prompt", "still here")));
    }
}
