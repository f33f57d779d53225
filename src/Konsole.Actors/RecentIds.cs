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

/// <summary>The values of the keys set latest, at most <c>capacity</c>: setting a key makes it the newest, and the oldest give way.</summary>
public sealed class RecentValues<TValue>(int capacity)
{
    private readonly OrderedDictionary<string, TValue> _values = new(StringComparer.Ordinal);

    public void Set(string key, TValue value)
    {
        _values.Remove(key); // so it goes in last
        _values[key] = value;
        if (_values.Count > capacity)
            _values.RemoveAt(0);
    }

    public bool TryGetValue(string key, out TValue value) => _values.TryGetValue(key, out value!);
}
