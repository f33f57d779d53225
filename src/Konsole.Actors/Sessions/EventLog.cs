namespace Konsole.Actors.Sessions;

/// <summary>A session's latest events, numbered from 1; the oldest give way once <c>capacity</c> are kept.</summary>
public sealed class EventLog(int capacity)
{
    private readonly SessionEvent[] _ring = new SessionEvent[capacity];
    private long _count;

    /// <summary>The id of the latest event; 0 before the first.</summary>
    public long LastId => _count;

    /// <summary>The id of the oldest event still kept (1 until the log wraps).</summary>
    public long FirstAvailable => Math.Max(1, _count - _ring.Length + 1);

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
