namespace Konsole.Bench;

/// <summary>Latency samples (milliseconds) and their percentiles.</summary>
public sealed class Samples(string name)
{
    private readonly List<double> _values = [];

    public string Name { get; } = name;

    public int Count => _values.Count;

    public void Add(double milliseconds) => _values.Add(milliseconds);

    public double P50 => Percentile(0.50);

    public double P99 => Percentile(0.99);

    public double Mean => _values.Average();

    /// <summary>How many samples took at least <paramref name="milliseconds"/>.</summary>
    public int CountAtLeast(double milliseconds) => _values.Count(v => v >= milliseconds);

    public double Percentile(double p) => Percentile(_values.Order().ToArray(), p);

    /// <summary>
    /// A 95 % interval of p50(this) / p50(<paramref name="baseline"/>), bootstrapped by resampling the rounds: sample i of
    /// each was taken in the same round, side by side, so a round's noise stays paired. A target on a ratio is only met
    /// or missed where the whole interval is on one side of it; within the interval, the run cannot tell.
    /// </summary>
    public (double Low, double High) P50RatioInterval(Samples baseline, int resamples = 2000)
    {
        if (baseline.Count != Count)
            throw new ArgumentException($"{Name} has {Count} samples, {baseline.Name} {baseline.Count}: they are not paired by round");
        var random = new Random(20261130); // fixed: the same samples give the same interval
        var mine = new double[Count];
        var theirs = new double[Count];
        var ratios = new double[resamples];
        for (var r = 0; r < resamples; r++)
        {
            for (var i = 0; i < Count; i++)
            {
                var round = random.Next(Count);
                mine[i] = _values[round];
                theirs[i] = baseline._values[round];
            }
            Array.Sort(mine);
            Array.Sort(theirs);
            ratios[r] = Percentile(mine, 0.5) / Percentile(theirs, 0.5);
        }
        Array.Sort(ratios);
        return (Percentile(ratios, 0.025), Percentile(ratios, 0.975));
    }

    private static double Percentile(double[] sorted, double p)
    {
        var rank = p * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
    }

    public override string ToString() => $"{Name}: p50 {P50:0.000} ms, p99 {P99:0.000} ms, mean {Mean:0.000} ms (n={Count})";
}
