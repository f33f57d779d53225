namespace Konsole.Actors.Sessions;

/// <summary>
/// A session's latest events, numbered on from <c>startAfter</c> + 1 (1 for a new session); the oldest give way once
/// <c>capacity</c> are kept.
/// </summary>
public sealed class EventLog(int capacity, long startAfter = 0)
{
    private readonly SessionEvent[] _ring = new SessionEvent[capacity];
    private readonly long _start = startAfter;
    private long _count = startAfter;

    /// <summary>The id of the latest event; <c>startAfter</c> before the first.</summary>
    public long LastId => _count;

    /// <summary>The id of the oldest event still kept.</summary>
    public long FirstAvailable => Math.Max(_start + 1, _count - _ring.Length + 1);

    public SessionEvent Append(string promptId, string type, string data, bool endsPrompt)
    {
        var item = new SessionEvent(_count + 1, promptId, type, data, endsPrompt);
        _ring[_count % _ring.Length] = item;
        _count++;
        return item;
    }

    /// <summary>The kept events with an id above <paramref name="id"/>, oldest first.</summary>
    public IEnumerable<SessionEvent> After(long id)
    {
        for (var next = Math.Max(id + 1, FirstAvailable); next <= _count; next++)
            yield return _ring[(next - 1) % _ring.Length];
    }
}
