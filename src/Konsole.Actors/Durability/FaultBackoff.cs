namespace Konsole.Actors.Durability;

/// <summary>
/// How long to wait before starting again something that stopped on a fault: doubling from <c>min</c> up to <c>max</c>, with
/// ±20 % jitter; faults more than five minutes apart count as the first.
/// </summary>
public sealed class FaultBackoff(TimeSpan min, TimeSpan max)
{
    private static readonly TimeSpan ForgottenAfter = TimeSpan.FromMinutes(5);
    private int _faults;
    private DateTime _last;

    /// <summary>Counts a fault; returns the wait before the next start.</summary>
    public TimeSpan Next()
    {
        var now = DateTime.UtcNow;
        var earlier = now - _last < ForgottenAfter ? _faults : 0;
        (_faults, _last) = (earlier + 1, now);
        return TimeSpan.FromMilliseconds(Math.Min(max.TotalMilliseconds,
            min.TotalMilliseconds * Math.Pow(2, earlier) * (0.8 + 0.4 * Random.Shared.NextDouble())));
    }
}
