namespace Konsole.Testing.FakeApi;

/// <summary>What a fake server was asked, in arrival order, and waiting until it is asked something. Thread-safe.</summary>
public sealed class RequestLog<T>(string server) where T : class
{
    private readonly Lock _gate = new();
    private readonly List<T> _items = [];
    private readonly List<(Func<T, bool> Match, TaskCompletionSource<T> Found)> _waiters = [];

    public IReadOnlyList<T> Items
    {
        get { lock (_gate) return _items.ToArray(); }
    }

    /// <summary>Records the request <paramref name="create"/> makes from its index, and wakes who waits for it.</summary>
    public T Add(Func<int, T> create)
    {
        lock (_gate)
        {
            var item = create(_items.Count);
            _items.Add(item);
            Notify(item);
            return item;
        }
    }

    /// <summary>Replaces the request at <paramref name="index"/> (e.g. once it is answered), and wakes who waits for the new one.</summary>
    public void Update(int index, Func<T, T> change)
    {
        lock (_gate)
        {
            _items[index] = change(_items[index]);
            Notify(_items[index]);
        }
    }

    /// <summary>
    /// The first request, already recorded or still to come, that <paramref name="match"/> accepts.
    /// Throws <see cref="TimeoutException"/> listing what was seen (and <paramref name="more"/>).
    /// </summary>
    public async Task<T> WaitAsync(Func<T, bool> match, TimeSpan timeout, Func<string>? more = null)
    {
        var found = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_items.FirstOrDefault(match) is { } seen)
                return seen;
            _waiters.Add((match, found));
        }
        try
        {
            return await found.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                _waiters.RemoveAll(w => w.Found == found);
                var seen = _items.Count == 0 ? "  (none)" : string.Join("\n", _items.Select(r => "  " + r));
                throw new TimeoutException($"No matching request to {server} within {timeout}. Seen:\n{seen}{more?.Invoke()}");
            }
        }
    }

    /// <summary>Fails every wait still open (the server is going away).</summary>
    public void Close()
    {
        lock (_gate)
        {
            foreach (var (_, found) in _waiters)
                found.TrySetException(new ObjectDisposedException(server));
            _waiters.Clear();
        }
    }

    private void Notify(T item)
    {
        foreach (var waiter in _waiters.ToList())
        {
            try
            {
                if (!waiter.Match(item))
                    continue;
                waiter.Found.TrySetResult(item);
            }
            catch (Exception e)
            {
                waiter.Found.TrySetException(e);
            }
            _waiters.Remove(waiter);
        }
    }
}
