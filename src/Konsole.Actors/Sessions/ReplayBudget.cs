namespace Konsole.Actors.Sessions;

/// <summary>
/// What the open sessions' replay buffers keep together, as each said at its last prompt's end, and which of them are to give
/// up their events once that passes <c>konsole.sessions.replay-total-bytes</c>: those whose last prompt ended the longest ago.
/// (A session's buffer grows during a prompt, bounded by its own <c>replay-buffer-bytes</c>, until it says so at the end.)
/// </summary>
public sealed class ReplayBudget(long maxBytes)
{
    private readonly Dictionary<string, (long Bytes, long Order)> _held = new(StringComparer.Ordinal);
    private long _order;

    /// <summary>The bytes kept together, as last said.</summary>
    public long Total { get; private set; }

    /// <summary>Notes what <paramref name="sessionId"/> keeps now; returns the sessions, never it, to give up their events (forgotten here).</summary>
    public List<string> Held(string sessionId, long bytes)
    {
        Forget(sessionId);
        _held[sessionId] = (bytes, ++_order);
        Total += bytes;
        var giveUp = new List<string>();
        while (Total > maxBytes && _held.Count > 1)
        {
            var oldest = _held.Where(h => h.Key != sessionId).MinBy(h => h.Value.Order).Key;
            Forget(oldest);
            giveUp.Add(oldest);
        }
        return giveUp;
    }

    /// <summary>A session closed, or started again with nothing kept.</summary>
    public void Forget(string sessionId)
    {
        if (_held.Remove(sessionId, out var held))
            Total -= held.Bytes;
    }
}
