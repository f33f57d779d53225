using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Konsole.Reliability.Tests;

/// <summary>Fault 4: 10^4 malformed HTTP requests (bodies, paths, methods, headers), and malformed HTTP itself on a raw socket.</summary>
public sealed class MalformedHttpSpecs(ITestOutputHelper output) : GatewayFault(output, "konsole.gateway.max-prompt-bytes = 4096")
{
    private const int Requests = 10_000;
    private const int RawRequests = 500;

    private static readonly string[] Paths =
    [
        "/sessions/{id}/hot-prompt", "/api/quick-turn", "/api/session", "/api/session/{id}/prompt", "/api/session/{id}",
        "/api/session/{id}/events", "/api/session/{id}/interrupt", "/api/accounts", "/api/accounts/switch", "/api/accounts/{id}/refresh",
        "/api/accounts/status", "/hot/status", "/api/events", "/healthz", "/readyz", "/api/{id}", "/{id}",
    ];

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FROB"];

    [Fact]
    public async Task Ten_thousand_malformed_requests_get_no_5xx()
    {
        var random = new Random(7);
        var requests = Enumerable.Range(0, Requests).Select(_ => Malformed(random)).ToList();
        var statuses = new int[Requests];
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var slots = new SemaphoreSlim(16);
        var started = DateTime.UtcNow;
        await Task.WhenAll(requests.Select(async (request, i) =>
        {
            await slots.WaitAsync();
            try
            {
                using var cancel = new CancellationTokenSource(Timeout);
                using var response = await Host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
                statuses[i] = (int)response.StatusCode;
                if (statuses[i] >= 500)
                    failures.Add($"{request.Method} {request.RequestUri!.OriginalString[..Math.Min(100, request.RequestUri.OriginalString.Length)]} " +
                        $"body {(request.Content is null ? "none" : Convert.ToHexString((await request.Content.ReadAsByteArrayAsync())[..Math.Min(40, (int)(request.Content.Headers.ContentLength ?? 0))]))}: " +
                        await response.Content.ReadAsStringAsync());
                // A stream that follows events never ends by itself: its status is all there is to check.
                if (response.Content.Headers.ContentType?.MediaType != "text/event-stream" || request.RequestUri!.OriginalString.Contains("prompt") || request.RequestUri.OriginalString.Contains("quick-turn"))
                    await response.Content.ReadAsByteArrayAsync(cancel.Token);
            }
            finally
            {
                slots.Release();
            }
        }));
        var seconds = (DateTime.UtcNow - started).TotalSeconds;

        var histogram = statuses.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Key}={g.Count()}").ToList();
        Assert.True(statuses.All(s => s < 500), $"5xx answers: {string.Join(", ", histogram)}\n{string.Join("\n", failures.Take(10))}");
        var raw = await RawGarbageAsync(new Random(11));
        // Kestrel itself answers an unknown HTTP version (HTTP/9.9) with 505, as HTTP prescribes; nothing else may be 5xx.
        Assert.True(raw.All(s => s.Status is null || s.Status < 500 || (s.Status == 505 && s.Kind == 2)),
            $"5xx on a raw socket: {string.Join(", ", raw.Where(s => s.Status >= 500).Select(s => $"{s.Status} for kind {s.Kind}").Distinct())}");
        Output.WriteLine($"FIGURES malformed HTTP: {Requests:N0} requests in {seconds:0.0}s, statuses {string.Join(", ", histogram)}; " +
            $"{RawRequests} raw malformed HTTP messages: {string.Join(", ", raw.GroupBy(s => s.Status?.ToString() ?? "closed").OrderBy(g => g.Key).Select(g => $"{g.Key}={g.Count()}"))}; no 5xx from the gateway (505 is Kestrel answering HTTP/9.9)");
    }

    private static HttpRequestMessage Malformed(Random random)
    {
        var path = Paths[random.Next(Paths.Length)].Replace("{id}", Id(random));
        if (random.Next(10) == 0)
            path += random.Next(3) switch { 0 => "?after=" + Id(random), 1 => "?x=%ZZ", _ => "/" + Id(random) };
        var request = new HttpRequestMessage(new HttpMethod(Methods[random.Next(Methods.Length)]), path);
        if (random.Next(4) != 0)
            request.Content = new ByteArrayContent(Body(random));
        if (random.Next(5) == 0)
            request.Headers.TryAddWithoutValidation("Last-Event-ID", Id(random));
        if (random.Next(20) == 0)
            request.Headers.TryAddWithoutValidation("Origin", "http://" + Id(random));
        if (random.Next(20) == 0)
            request.Headers.Host = "x" + random.Next(1000) + ".example";
        if (random.Next(10) == 0)
            request.Headers.TryAddWithoutValidation("Accept", random.Next(2) == 0 ? "application/json" : "*/*;q=" + Id(random));
        return request;
    }

    private static string Id(Random random) => random.Next(9) switch
    {
        0 => "..%2F..%2Fetc%2Fpasswd",
        1 => new string('x', random.Next(1, 20_000)),
        2 => "%00%01%FF",
        3 => "ui-" + random.Next(100),
        4 => "-1",
        5 => "%E2%98%83%F0%9F%92%A9",
        6 => "a b",
        7 => "9999999999999999999999",
        _ => "%",
    };

    private static byte[] Body(Random random) => random.Next(14) switch
    {
        0 => RandomBytes(random, random.Next(0, 4096)),
        1 => Encoding.UTF8.GetBytes("{\"prompt\":"),
        2 => Encoding.UTF8.GetBytes(new string('[', 5000) + new string(']', 5000)),
        3 => Encoding.UTF8.GetBytes("{\"prompt\": 1e99999}"),
        4 => Encoding.UTF8.GetBytes("{\"prompt\": \"" + new string('x', random.Next(4000, 9000)) + "\"}"),
        5 => [.. "{\"prompt\": \""u8, 0xff, 0xfe, 0xc3, .. "\"}"u8],
        6 => Encoding.UTF8.GetBytes("{\"type\": \"" + new string('z', 100) + "\"}"),
        7 => Encoding.UTF8.GetBytes("{\"dashboard\": {\"nested\": [1, 2, {}]}}"),
        8 => Encoding.UTF8.GetBytes("{\"prompt\": \"\\u0000\\u0001\\ud800\"}"),
        9 => Encoding.UTF8.GetBytes("{\"prompt\": \"ok\", \"prompt\": \"twice\"}"),
        10 => Encoding.UTF8.GetBytes("null"),
        11 => Encoding.UTF8.GetBytes("{\"type\": \"worker\", \"provider\": null, \"model\": 3}"),
        12 => Encoding.UTF8.GetBytes("{\"prompt\": \"   \\t\\n  \"}"),
        _ => Encoding.UTF8.GetBytes("{\"prompt\": \"hi\"}"), // now and then a fine one: the gateway must keep serving
    };

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Malformed HTTP/1.1 on a raw socket: the status line the server answers, or null when it closes without one.</summary>
    private async Task<List<(int Kind, int? Status)>> RawGarbageAsync(Random random)
    {
        var port = Host.Client.BaseAddress!.Port;
        var statuses = new List<(int, int?)>();
        for (var i = 0; i < RawRequests; i++)
        {
            var kind = random.Next(6);
            var message = kind switch
            {
                0 => RandomBytes(random, random.Next(1, 2048)),
                1 => Encoding.ASCII.GetBytes($"POST /api/quick-turn HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999\r\n\r\n{{\"prompt\""),
                2 => Encoding.ASCII.GetBytes("GET /api/accounts HTTP/9.9\r\n\r\n"),
                3 => Encoding.ASCII.GetBytes($"GET /{new string('a', 70_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
                4 => Encoding.ASCII.GetBytes("POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
                _ => Encoding.ASCII.GetBytes("GET /api/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Without Colon\r\n\r\n"),
            };
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port);
            var stream = client.GetStream();
            try
            {
                await stream.WriteAsync(message);
                client.Client.Shutdown(SocketShutdown.Send);
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var buffer = new byte[64];
                var read = await stream.ReadAsync(buffer, cancel.Token);
                var line = Encoding.ASCII.GetString(buffer, 0, read);
                statuses.Add((kind, line.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) ? int.Parse(line[9..12]) : null));
            }
            catch (IOException)
            {
                statuses.Add((kind, null)); // the server closed the connection
            }
        }
        return statuses;
    }
}
