namespace Konsole.Actors.Sessions;

/// <summary>
/// A session's latest events, numbered on from <c>startAfter</c> + 1 (1 for a new session); the oldest give way once
/// <c>capacity</c> are kept. Its memory grows with what it holds (an idle session costs next to nothing).
/// </summary>
public sealed class EventLog(int capacity, long startAfter = 0)
{
    private const int InitialSize = 16;

    private readonly long _start = startAfter;
    // Kept as values, not as SessionEvent objects: a busy session keeps thousands, and each object that survives costs the
    // garbage collector a copy on every promotion. Readers get a SessionEvent made when they ask.
    private Entry[] _ring = new Entry[Math.Min(InitialSize, capacity)];
    private long _count = startAfter;

    /// <summary>The id of the latest event; <c>startAfter</c> before the first.</summary>
    public long LastId => _count;

    /// <summary>The id of the oldest event still kept.</summary>
    public long FirstAvailable => Math.Max(_start + 1, _count - _ring.Length + 1);

    public SessionEvent Append(string promptId, string type, ReadOnlyMemory<byte> data, bool endsPrompt)
    {
        if (_count - _start == _ring.Length && _ring.Length < capacity)
        {
            // Not wrapped yet (it only wraps at full capacity): the events are in order from index 0.
            Array.Resize(ref _ring, (int)Math.Min((long)_ring.Length * 2, capacity));
        }
        _count++;
        _ring[Index(_count)] = new Entry(promptId, type, data, endsPrompt);
        return Event(_count);
    }

    private long Index(long id) => (id - _start - 1) % _ring.Length;

    private SessionEvent Event(long id)
    {
        var entry = _ring[Index(id)];
        return new SessionEvent(id, entry.PromptId, entry.Type, entry.Data, entry.EndsPrompt);
    }

    /// <summary>The kept events with an id above <paramref name="id"/>, oldest first (none for an id at or beyond the latest).</summary>
    public IEnumerable<SessionEvent> After(long id)
    {
        if (id >= _count)
            yield break; // and id + 1 would wrap to long.MinValue for long.MaxValue
        for (var next = Math.Max(id + 1, FirstAvailable); next <= _count; next++)
            yield return Event(next);
    }

    private readonly record struct Entry(string PromptId, string Type, ReadOnlyMemory<byte> Data, bool EndsPrompt);
}
