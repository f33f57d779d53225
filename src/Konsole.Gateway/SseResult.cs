using System.Buffers;
using System.Net.ServerSentEvents;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Konsole.Gateway;

/// <summary>
/// A Server-Sent Events response (<c>id</c>, <c>event</c>, <c>data</c> written verbatim, a multi-line data as several
/// <c>data:</c> lines), with the headers sent at once, so a client following a quiet stream (<c>/api/events</c>) knows
/// it is connected. Events already waiting are written together and flushed once; a lone event is flushed at once.
/// </summary>
public sealed class SseResult(IAsyncEnumerable<SseItem<string>> items) : IResult
{
    public async Task ExecuteAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache,no-store";
        response.Headers["X-Accel-Buffering"] = "no"; // reverse proxies: do not buffer the stream
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var cancel = context.RequestAborted;
        try
        {
            await response.StartAsync(cancel);
            await response.BodyWriter.FlushAsync(cancel); // Kestrel only buffers the headers on start
            await using var events = items.GetAsyncEnumerator(cancel);
            while (true)
            {
                var next = events.MoveNextAsync();
                if (!next.IsCompleted)
                    await response.BodyWriter.FlushAsync(cancel); // nothing else waiting: send what is written
                if (!await next)
                    break;
                Write(response.BodyWriter, events.Current);
            }
            await response.BodyWriter.FlushAsync(cancel);
        }
        catch (OperationCanceledException)
        {
            // The client went away, or the stream was told to end (the host is stopping): either way it is over.
        }
    }

    private static void Write(System.IO.Pipelines.PipeWriter writer, SseItem<string> item)
    {
        var text = new StringBuilder(item.Data.Length + 64);
        if (item.EventId is { } id)
            text.Append("id: ").Append(id).Append('\n');
        if (item.EventType is { } type)
            text.Append("event: ").Append(type).Append('\n');
        foreach (var line in item.Data.Split('\n'))
            text.Append("data: ").Append(line.TrimEnd('\r')).Append('\n');
        text.Append('\n');
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        writer.Write(bytes);
    }
}
