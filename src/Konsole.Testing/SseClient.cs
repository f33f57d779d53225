using System.Runtime.CompilerServices;
using System.Text;

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

    private SseStream(HttpResponseMessage response, Stream body)
    {
        _response = response;
        _events = ParseAsync(body, _closed.Token).GetAsyncEnumerator(_closed.Token);
    }

    public HttpResponseMessage Response => _response;

    /// <summary>Every event read so far.</summary>
    public List<SseEvent> Received { get; } = [];

    /// <summary>Sends <paramref name="request"/> and returns once the response headers are in; the body is read as events.</summary>
    public static async Task<SseStream> OpenAsync(HttpClient client, HttpRequestMessage request, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        return new SseStream(response, await response.Content.ReadAsStreamAsync(cancel.Token));
    }

    /// <summary>The next event, or null when the server ended the stream. Throws <see cref="TimeoutException"/> past <paramref name="timeout"/>.</summary>
    public async Task<SseEvent?> NextAsync(TimeSpan timeout)
    {
        var next = _events.MoveNextAsync();
        bool more;
        try
        {
            // An event already buffered costs no timer; a wait's timer goes as soon as the event comes.
            more = next.IsCompletedSuccessfully ? next.Result : await next.AsTask().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no SSE event within {timeout.TotalSeconds:0.#}s after {Received.Count}: {Describe()}");
        }
        if (!more)
            return null;
        Received.Add(_events.Current);
        return _events.Current;
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
        await _closed.CancelAsync();
        _response.Dispose();
        try
        {
            await _events.DisposeAsync();
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        _closed.Dispose();
    }

    private string Describe() => string.Join(", ", Received.TakeLast(5).Select(e => $"{e.Id}:{e.Event}"));

    private static async IAsyncEnumerable<SseEvent> ParseAsync(Stream body, [EnumeratorCancellation] CancellationToken cancel)
    {
        using var reader = new StreamReader(body, Encoding.UTF8);
        string? id = null, type = null;
        var data = new StringBuilder();
        var hasData = false;
        while (await reader.ReadLineAsync(cancel) is { } line)
        {
            if (line.Length == 0)
            {
                if (hasData)
                    yield return new SseEvent(id, type ?? "message", data.ToString());
                type = null;
                data.Clear();
                hasData = false;
                continue;
            }
            if (line[0] == ':')
                continue;
            var colon = line.IndexOf(':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? "" : line[(colon + 1)..];
            if (value.StartsWith(' '))
                value = value[1..];
            switch (field)
            {
                case "id": id = value; break;
                case "event": type = value; break;
                case "data":
                    if (hasData)
                        data.Append('\n');
                    data.Append(value);
                    hasData = true;
                    break;
            }
        }
    }
}
