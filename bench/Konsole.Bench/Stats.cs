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

    public double Percentile(double p)
    {
        var sorted = _values.Order().ToArray();
        var rank = p * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
    }

    public override string ToString() => $"{Name}: p50 {P50:0.000} ms, p99 {P99:0.000} ms, mean {Mean:0.000} ms (n={Count})";
}
