namespace Konsole.Actors.Sessions;

/// <summary>
/// What the open sessions' replay buffers keep together, as each last said (at a prompt's end, or asked to give up its
/// events), and which of them are to give up their events once that passes <c>konsole.sessions.replay-total-bytes</c>: those
/// whose last word is the oldest, not one that keeps nothing or said it runs a prompt (it keeps its events until that ends, then says so
/// again). A session's buffer grows during a prompt, bounded by its own <c>replay-buffer-bytes</c>, until it says so.
/// </summary>
public sealed class ReplayBudget(long maxBytes)
{
    private readonly Dictionary<string, (long Bytes, long Order, bool Running)> _held = new(StringComparer.Ordinal);
    private long _order;

    /// <summary>The bytes kept together, as last said.</summary>
    public long Total { get; private set; }

    /// <summary>Notes what <paramref name="sessionId"/> keeps now; returns the sessions, never it, to give up their events (forgotten here).</summary>
    public List<string> Held(string sessionId, long bytes, bool running = false)
    {
        Forget(sessionId);
        _held[sessionId] = (bytes, ++_order, running);
        Total += bytes;
        var giveUp = new List<string>();
        while (Total > maxBytes && OldestToAsk(besides: sessionId) is { } oldest)
        {
            Forget(oldest);
            giveUp.Add(oldest);
        }
        return giveUp;
    }

    private string? OldestToAsk(string besides)
    {
        (string? Id, long Order) oldest = (null, long.MaxValue);
        foreach (var (id, held) in _held)
        {
            if (id != besides && !held.Running && held.Bytes > 0 && held.Order < oldest.Order)
                oldest = (id, held.Order);
        }
        return oldest.Id;
    }

    /// <summary>A session closed, or started again with nothing kept.</summary>
    public void Forget(string sessionId)
    {
        if (_held.Remove(sessionId, out var held))
            Total -= held.Bytes;
    }
}
