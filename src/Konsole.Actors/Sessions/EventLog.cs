namespace Konsole.Actors.Sessions;

/// <summary>
/// A session's latest events, numbered on from <c>startAfter</c> + 1 (1 for a new session); the oldest give way once
/// <c>capacity</c> are kept, or once their data passes <c>maxBytes</c> (the latest event is kept whatever its size). Its memory
/// grows with what it holds (an idle session costs next to nothing).
/// </summary>
public sealed class EventLog(int capacity, long maxBytes = long.MaxValue, long startAfter = 0)
{
    private const int InitialSize = 16;

    // Kept as values, not as SessionEvent objects: a busy session keeps thousands, and each object that survives costs the
    // garbage collector a copy on every promotion. Readers get a SessionEvent made when they ask.
    private Entry[] _ring = new Entry[Math.Min(InitialSize, capacity)];
    private int _oldest; // the ring's index of the oldest event kept
    private int _kept;
    private long _bytes;
    private long _count = startAfter;

    /// <summary>The id of the latest event; <c>startAfter</c> before the first.</summary>
    public long LastId => _count;

    /// <summary>The id of the oldest event still kept (the next one's while none is).</summary>
    public long FirstAvailable => _count - _kept + 1;

    /// <summary>The bytes of data the kept events hold.</summary>
    public long Bytes => _bytes;

    public SessionEvent Append(string promptId, string type, ReadOnlyMemory<byte> data, bool endsPrompt)
    {
        if (_kept == _ring.Length)
        {
            if (_ring.Length < capacity)
                Grow();
            else
                DropOldest();
        }
        _ring[(_oldest + _kept) % _ring.Length] = new Entry(promptId, type, data, endsPrompt);
        _kept++;
        _count++;
        _bytes += data.Length;
        while (_bytes > maxBytes && _kept > 1)
            DropOldest();
        return Event(_count);
    }

    /// <summary>Gives up every event kept; ids go on from the latest.</summary>
    public void Clear()
    {
        _ring = new Entry[Math.Min(InitialSize, capacity)];
        _oldest = 0;
        _kept = 0;
        _bytes = 0;
    }

    private void Grow()
    {
        var ring = new Entry[(int)Math.Min((long)_ring.Length * 2, capacity)];
        for (var i = 0; i < _kept; i++)
            ring[i] = _ring[(_oldest + i) % _ring.Length];
        _ring = ring;
        _oldest = 0;
    }

    private void DropOldest()
    {
        _bytes -= _ring[_oldest].Data.Length;
        _ring[_oldest] = default; // its data is not held any longer
        _oldest = (_oldest + 1) % _ring.Length;
        _kept--;
    }

    private SessionEvent Event(long id)
    {
        var entry = _ring[(int)((_oldest + (id - FirstAvailable)) % _ring.Length)];
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
