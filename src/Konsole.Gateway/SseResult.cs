using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Konsole.Actors.Configuration;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Konsole.Gateway;

/// <summary>
/// A Server-Sent Events response (<c>id</c>, <c>event</c>, <c>data</c>: UTF-8 bytes written verbatim, a multi-line data as several
/// <c>data:</c> lines), with the headers sent at once, so a client following a quiet stream (<c>/api/events</c>) knows
/// it is connected. Events already waiting are written together and flushed once (every <see cref="FlushAtBytes"/> at
/// least, so a stream that never pauses still goes out, and a client that does not read holds it back); a lone event is
/// flushed at once. A stream with nothing to send for <paramref name="keepAlive"/> gets a comment line (<c>: keep-alive</c>,
/// which clients skip): a client gone without the server seeing it (a reset it has not read, a peer that vanished) is
/// found gone at that write, so its stream ends, and its place in <c>konsole.gateway.max-streams</c> with it.
/// </summary>
/// <param name="keepAlive">Null: none (a stream that always has something to send soon).</param>
public sealed class SseResult(IAsyncEnumerable<SseMessage> items, TimeSpan? keepAlive = null) : IResult
{
    public const int FlushAtBytes = 32 * 1024;

    /// <summary>An SSE response with the keep-alive of <c>konsole.gateway.keep-alive</c>.</summary>
    public static SseResult For(HttpContext context, IAsyncEnumerable<SseMessage> items) =>
        new(items, context.RequestServices.GetRequiredService<KonsoleSettings>().Gateway.KeepAlive);

    public async Task ExecuteAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache,no-store";
        response.Headers["X-Accel-Buffering"] = "no"; // reverse proxies: do not buffer the stream
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var cancel = context.RequestAborted;
        // Entered before anything can fail, so the events' own clean-up (e.g. unfollowing a session) runs however the response ends.
        var events = items.GetAsyncEnumerator(cancel);
        var next = events.MoveNextAsync();
        var pending = true; // next is not awaited yet
        try
        {
            await response.StartAsync(cancel);
            await response.BodyWriter.FlushAsync(cancel); // Kestrel only buffers the headers on start
            pending = false;
            for (; ; next = events.MoveNextAsync())
            {
                if (!next.IsCompleted)
                {
                    pending = true;
                    await response.BodyWriter.FlushAsync(cancel); // nothing else waiting: send what is written
                    if (keepAlive is { } quiet)
                    {
                        // Waited for as a task from here on (a ValueTask may be awaited once only), keep-alives between.
                        var waited = next.AsTask();
                        next = new ValueTask<bool>(waited);
                        await KeepAliveAsync(response.BodyWriter, waited, quiet, cancel);
                    }
                    pending = false;
                }
                if (!await next)
                    break;
                Write(response.BodyWriter, events.Current);
                if (response.BodyWriter.CanGetUnflushedBytes && response.BodyWriter.UnflushedBytes >= FlushAtBytes)
                    await response.BodyWriter.FlushAsync(cancel);
            }
            await response.BodyWriter.FlushAsync(cancel);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away (the request was aborted, or a write to it failed), or the stream was told to end (the
            // host is stopping): either way it is over.
            if (pending)
            {
                // A flush failed while the events waited for the next one: an enumerator cannot be disposed before that
                // wait ends. Aborting the request ends it (every stream ends with its request).
                context.Abort();
                try
                {
                    await next;
                }
                catch (Exception)
                {
                    // its outcome is of no use now
                }
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    /// <summary>
    /// Until <paramref name="next"/> is done (its outcome is left to its caller), a keep-alive comment after each
    /// <paramref name="quiet"/> without it.
    /// </summary>
    private static async Task KeepAliveAsync(PipeWriter writer, Task<bool> next, TimeSpan quiet, CancellationToken cancel)
    {
        while (true)
        {
            await ((Task)next.WaitAsync(quiet, cancel)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (next.IsCompleted)
                return;
            cancel.ThrowIfCancellationRequested();
            writer.Write(": keep-alive\n\n"u8);
            await writer.FlushAsync(cancel);
        }
    }

    /// <summary>Writes one event straight into the response's buffer.</summary>
    internal static void Write(PipeWriter writer, SseMessage item)
    {
        if (item.Id is { } id)
        {
            Span<byte> digits = stackalloc byte[20]; // long.MinValue's length
            id.TryFormat(digits, out var length, provider: CultureInfo.InvariantCulture);
            WriteField(writer, "id: "u8, digits[..length]);
        }
        // A type is the CLI's, read from its line: one with a line break must not end the field early.
        WriteField(writer, "event: "u8, item.Type.AsSpan().ContainsAny('\r', '\n') ? item.Type.ReplaceLineEndings(" ") : item.Type);
        // SSE ends a field at CR, LF or CRLF: a bare CR (JSON whitespace to the CLI) must not end the data early.
        var data = item.Data.Span;
        while (true)
        {
            var end = data.IndexOfAny((byte)'\r', (byte)'\n');
            WriteField(writer, "data: "u8, end < 0 ? data : data[..end]);
            if (end < 0)
                break;
            data = data[(end + (data[end..].StartsWith("\r\n"u8) ? 2 : 1))..];
        }
        writer.Write("\n"u8);
    }

    private static void WriteField(PipeWriter writer, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        writer.Write(name);
        writer.Write(value);
        writer.Write("\n"u8);
    }

    private static void WriteField(PipeWriter writer, ReadOnlySpan<byte> name, string value)
    {
        writer.Write(name);
        Encoding.UTF8.GetBytes(value, writer);
        writer.Write("\n"u8);
    }

    /// <summary>An event whose data is <paramref name="body"/> serialized as JSON.</summary>
    public static SseMessage Json<T>(T body, string type, long? id = null) => new(JsonSerializer.SerializeToUtf8Bytes(body), type, id);
}
