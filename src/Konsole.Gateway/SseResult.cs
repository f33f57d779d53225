using System.Net.ServerSentEvents;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Konsole.Gateway;

/// <summary>
/// A Server-Sent Events response, like <c>TypedResults.ServerSentEvents</c> for strings (data written verbatim), but
/// with the headers sent at once: a client following a quiet stream (<c>/api/events</c>) knows it is connected.
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
        try
        {
            await response.StartAsync(context.RequestAborted);
            await response.Body.FlushAsync(context.RequestAborted); // Kestrel only buffers the headers on start
            await SseFormatter.WriteAsync(items, response.Body, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            // The client went away, or the stream was told to end (the host is stopping): either way it is over.
        }
    }
}
