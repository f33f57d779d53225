using System.Text;

namespace Konsole.Bench;

/// <summary>A scenario's figures as Markdown, printed as it goes and collected for BENCHMARKS.md.</summary>
public sealed class Report
{
    private readonly StringBuilder _text = new();

    public Report(string title) => Line($"### {title}\n");

    public string Text => _text.ToString();

    public void Line(string line)
    {
        _text.AppendLine(line);
        Console.WriteLine(line);
    }

    public void Table(string[] header, IEnumerable<string[]> rows)
    {
        Line("");
        Line("| " + string.Join(" | ", header) + " |");
        Line("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var row in rows)
            Line("| " + string.Join(" | ", row) + " |");
        Line("");
    }

    /// <summary>True once a <see cref="Check"/> failed: the run's figures do not count.</summary>
    public bool Failed { get; private set; }

    public void Verdict(string target, bool met) => Line($"- {target}: **{(met ? "met" : "missed")}**");

    /// <summary>What must hold for the figures to mean anything (every stream ended, no CLI left), unlike a target, which may be missed.</summary>
    public void Check(string what, bool holds)
    {
        Failed |= !holds;
        Line($"- {what}: **{(holds ? "holds" : "FAILED")}**");
    }

    /// <summary>A target on a ratio, judged by its interval (<see cref="Samples.P50RatioInterval"/>), not by one figure.</summary>
    public void Verdict(string target, double limit, (double Low, double High) interval) =>
        Line($"- {target}: **{(interval.High <= limit ? "met" : interval.Low > limit ? "missed" : "not decided")}** " +
             $"(95 % interval {interval.Low:0.000} to {interval.High:0.000} ×)");
}
