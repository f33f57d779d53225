namespace Konsole.Actors;

/// <summary>The latest ids added, at most <c>capacity</c>: the oldest give way. Enumerates them oldest first.</summary>
public sealed class RecentIds(int capacity) : IEnumerable<string>
{
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
    private readonly Queue<string> _order = new();

    /// <summary>Adds <paramref name="id"/>; false when it is kept already.</summary>
    public bool Add(string id)
    {
        if (!_ids.Add(id))
            return false;
        _order.Enqueue(id);
        if (_order.Count > capacity)
            _ids.Remove(_order.Dequeue());
        return true;
    }

    public bool Contains(string id) => _ids.Contains(id);

    public IEnumerator<string> GetEnumerator() => _order.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
