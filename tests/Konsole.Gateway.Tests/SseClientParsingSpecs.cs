using System.Text;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Microsoft.AspNetCore.Http;

namespace Konsole.Gateway.Tests;

/// <summary>
/// Konsole.Testing's <see cref="SseStream"/> parses as a browser's EventSource does (WHATWG HTML, server-sent events): a real
/// Kestrel sends raw bytes, in pieces, and a real HttpClient reads them.
/// </summary>
public sealed class SseClientParsingSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("id: 1\revent: a\rdata: x\r\rid: 2\revent: b\rdata: y\r\r")] // bare CR: read as no event at all
    [InlineData("id: 1\r\nevent: a\r\ndata: x\r\n\r\nid: 2\r\nevent: b\r\ndata: y\r\n\r\n")]
    [InlineData("id: 1\nevent: a\ndata: x\n\nid: 2\nevent: b\ndata: y\n\n")]
    [InlineData("\uFEFFid: 1\nevent: a\ndata: x\n\nid: 2\nevent: b\ndata: y\n\n")] // a BOM: "event" read as "\uFEFFid"
    public async Task Lines_end_with_cr_lf_or_crlf_and_a_leading_bom_is_skipped(string raw)
    {
        var events = await ParseAsync(Encoding.UTF8.GetBytes(raw));

        Assert.Equal(["1:a:x", "2:b:y"], events.Select(e => $"{e.Id}:{e.Event}:{e.Data}"));
    }

    [Fact]
    public async Task An_event_ended_with_bare_crs_is_read_without_waiting_for_more_bytes()
    {
        var (app, url) = await LoopbackServer.StartAsync(async context =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.Body.WriteAsync("event: a\rdata: x\r\r"u8.ToArray());
            await context.Response.Body.FlushAsync();
            await Task.Delay(System.Threading.Timeout.Infinite, context.RequestAborted); // then quiet
        });
        await using var _ = app;
        using var client = new HttpClient();
        await using var sse = await SseStream.OpenAsync(client, new HttpRequestMessage(HttpMethod.Get, url), Timeout);

        var first = await sse.NextAsync(TimeSpan.FromSeconds(10)); // timed out: the last CR waited for a possible LF

        Assert.Equal(("a", "x"), (first?.Event, first?.Data));
    }

    [Fact]
    public async Task An_empty_event_field_is_a_message()
    {
        var events = await ParseAsync("event: a\ndata: 1\n\nevent:\ndata: 2\n\n"u8.ToArray());

        Assert.Equal(["a:1", "message:2"], events.Select(e => $"{e.Event}:{e.Data}")); // was ":2"
    }
    [Fact]
    public async Task A_stream_disposed_twice_is_disposed_once()
    {
        var (app, url) = await LoopbackServer.StartAsync(context => context.Response.WriteAsync("data: 1\n\n"));
        await using var _ = app;
        using var client = new HttpClient();
        var sse = await SseStream.OpenAsync(client, new HttpRequestMessage(HttpMethod.Get, url), Timeout);

        await sse.DisposeAsync();
        await sse.DisposeAsync(); // threw ObjectDisposedException
    }

    /// <summary>The events of a response whose body is <paramref name="raw"/>, sent a byte at a time (a CRLF split across reads).</summary>
    private static async Task<IReadOnlyList<SseEvent>> ParseAsync(byte[] raw)
    {
        var (app, url) = await LoopbackServer.StartAsync(async context =>
        {
            context.Response.ContentType = "text/event-stream";
            foreach (var b in raw)
            {
                await context.Response.Body.WriteAsync(new[] { b });
                await context.Response.Body.FlushAsync();
            }
        });
        await using var _ = app;
        using var client = new HttpClient();
        await using var sse = await SseStream.OpenAsync(client, new HttpRequestMessage(HttpMethod.Get, url), Timeout);
        return await sse.ReadToEndAsync(Timeout);
    }
}
