using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using Konsole.Actors.Protocol;

namespace Konsole.Testing;

/// <summary>One Server-Sent Event as a client sees it.</summary>
public sealed record SseEvent(string? Id, string Event, string Data);

/// <summary>
/// An open SSE response read event by event, as a browser's EventSource parses it (<c>id</c>, <c>event</c>, multi-line
/// <c>data</c>, comments skipped). Disposing it closes the connection, as a client that goes away does.
/// </summary>
public sealed class SseStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly IAsyncEnumerator<SseEvent> _events;
    private readonly CancellationTokenSource _closed = new();
    private readonly bool _keep;
    private readonly Queue<SseEvent> _latest = new(); // for error messages when not every event is kept
    private int _count;
    private Task<bool>? _pending; // a read a timeout left waiting: the next call goes on with it, so no event is lost

    private SseStream(HttpResponseMessage response, Stream body, bool keep)
    {
        _response = response;
        _keep = keep;
        _events = ParseAsync(body, _closed.Token).GetAsyncEnumerator(_closed.Token);
    }

    private int _disposed;

    public HttpResponseMessage Response => _response;

    /// <summary>Every event read so far (none when opened with <c>keep: false</c>).</summary>
    public List<SseEvent> Received { get; } = [];

    /// <summary>
    /// Sends <paramref name="request"/> and returns once the response headers are in; the body is read as events. With
    /// <paramref name="keep"/> false, events are not collected in <see cref="Received"/> (a load test reading millions).
    /// </summary>
    public static async Task<SseStream> OpenAsync(HttpClient client, HttpRequestMessage request, TimeSpan timeout, bool keep = true)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        return new SseStream(response, await response.Content.ReadAsStreamAsync(cancel.Token), keep);
    }

    /// <summary>The next event, or null when the server ended the stream. Throws <see cref="TimeoutException"/> past <paramref name="timeout"/>.</summary>
    public async Task<SseEvent?> NextAsync(TimeSpan timeout)
    {
        var next = _pending is null ? _events.MoveNextAsync() : new ValueTask<bool>(_pending);
        bool more;
        if (next.IsCompletedSuccessfully)
            more = next.Result; // an event already buffered costs no timer
        else
        {
            _pending ??= next.AsTask();
            try
            {
                // A deadline already past (a caller's loop that ran over it) still gives what has arrived, never an endless wait.
                more = await _pending.WaitAsync(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"no SSE event within {Math.Max(0, timeout.TotalSeconds):0.#}s after {_count}: {Describe()}");
            }
        }
        _pending = null;
        if (!more)
            return null;
        var item = _events.Current;
        _count++;
        if (_keep)
            Received.Add(item);
        _latest.Enqueue(item);
        if (_latest.Count > 5)
            _latest.Dequeue();
        return item;
    }

    /// <summary>Reads until an event of <paramref name="type"/> (returned) arrives.</summary>
    public async Task<SseEvent> NextOfTypeAsync(string type, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var item = await NextAsync(deadline - DateTime.UtcNow) ?? throw new InvalidOperationException($"the stream ended before a '{type}' event: {Describe()}");
            if (item.Event == type)
                return item;
        }
    }

    /// <summary>Reads until the server ends the stream; returns every event received.</summary>
    public async Task<IReadOnlyList<SseEvent>> ReadToEndAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (await NextAsync(deadline - DateTime.UtcNow) is not null)
        {
        }
        return Received;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return; // as IAsyncDisposable asks: a second dispose does nothing
        await _closed.CancelAsync();
        _response.Dispose();
        try
        {
            if (_pending is not null)
                await _pending; // an enumerator cannot be disposed while a read waits; the cancellation ends it
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or HttpRequestException)
        {
        }
        try
        {
            await _events.DisposeAsync();
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        _closed.Dispose();
    }

    private string Describe() => string.Join(", ", _latest.Select(e => $"{e.Id}:{e.Event}"));

    /// <summary>
    /// Parses the body as UTF-8 bytes, as an EventSource does (lines end with CR, LF or CRLF; a leading BOM is skipped; an
    /// empty <c>event</c> is a <c>message</c>): one string for each event's data, and its id and type (a repeated type is shared).
    /// </summary>
    private static async IAsyncEnumerable<SseEvent> ParseAsync(Stream body, [EnumeratorCancellation] CancellationToken cancel)
    {
        var reader = PipeReader.Create(body, new StreamPipeReaderOptions(leaveOpen: false));
        var data = new ArrayBufferWriter<byte>();
        string? id = null, type = null, lastTypeName = null;
        byte[] lastType = [];
        var hasData = false;
        var started = false;
        var afterCr = false; // the last line ended with a CR at the end of a read: an LF first in the next is that line's end
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(cancel);
                var buffer = read.Buffer;
                if (!started && (buffer.Length >= 3 || read.IsCompleted))
                {
                    started = true;
                    if (buffer.Length >= 3 && Is(buffer.Slice(0, 3), [0xEF, 0xBB, 0xBF]))
                        buffer = buffer.Slice(3);
                }
                while (started && TryReadLine(ref buffer, ref afterCr, out var line))
                {
                    if (line.Length == 0)
                    {
                        if (hasData)
                            yield return new SseEvent(id, string.IsNullOrEmpty(type) ? "message" : type, Encoding.UTF8.GetString(data.WrittenSpan));
                        type = null;
                        data.ResetWrittenCount();
                        hasData = false;
                        continue;
                    }
                    var field = line.PositionOf((byte)':') is { } colon ? line.Slice(0, colon) : line;
                    var value = field.Length < line.Length ? line.Slice(field.Length + 1) : default;
                    if (value.Length > 0 && value.FirstSpan[0] == (byte)' ')
                        value = value.Slice(1);
                    if (field.Length == 0)
                        continue; // a comment
                    if (Is(field, "data"u8))
                    {
                        if (hasData)
                            data.Write("\n"u8);
                        foreach (var segment in value)
                            data.Write(segment.Span);
                        hasData = true;
                    }
                    else if (Is(field, "id"u8))
                        id = Encoding.UTF8.GetString(value);
                    else if (Is(field, "event"u8))
                    {
                        if (!Is(value, lastType))
                        {
                            lastType = value.ToArray();
                            lastTypeName = Encoding.UTF8.GetString(lastType);
                        }
                        type = lastTypeName;
                    }
                }
                if (read.IsCompleted)
                    yield break;
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    /// <summary>
    /// Takes the next whole line from <paramref name="buffer"/>, without its end (CR, LF or CRLF); false when none is whole yet. A
    /// CR at the buffer's end ends its line at once (a stream of bare CRs must not wait for more bytes to deliver its event);
    /// <paramref name="afterCr"/> then skips an LF that starts the next read.
    /// </summary>
    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, ref bool afterCr, out ReadOnlySequence<byte> line)
    {
        line = default;
        if (afterCr && !buffer.IsEmpty)
        {
            afterCr = false;
            if (buffer.FirstSpan[0] == (byte)'\n')
                buffer = buffer.Slice(1);
        }
        var sequence = new SequenceReader<byte>(buffer);
        if (!sequence.TryAdvanceToAny("\r\n"u8, advancePastDelimiter: false))
            return false;
        var end = sequence.Position;
        sequence.TryRead(out var delimiter);
        if (delimiter == (byte)'\r' && !sequence.IsNext((byte)'\n', advancePast: true))
            afterCr = sequence.End;
        line = buffer.Slice(0, end);
        buffer = buffer.Slice(sequence.Position);
        return true;
    }

    private static bool Is(ReadOnlySequence<byte> bytes, ReadOnlySpan<byte> expected) =>
        bytes.Length == expected.Length && (bytes.IsSingleSegment ? bytes.FirstSpan.SequenceEqual(expected) : bytes.ToArray().AsSpan().SequenceEqual(expected));
}
