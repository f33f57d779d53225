using System.Text;

namespace Konsole.Bench.Micro;

/// <summary>The stdout lines recorded with the real CLI (tests/fixtures/protocol), the input of the micro-benchmarks.</summary>
public static class RecordedLines
{
    public static IReadOnlyList<byte[]> Load()
    {
        var fixtures = Path.Combine(Repository.Root, "tests", "fixtures", "protocol");
        return Directory.GetFiles(fixtures, "*.jsonl").Order()
            .SelectMany(File.ReadLines)
            .Where(line => line.StartsWith(">>> ", StringComparison.Ordinal))
            .Select(line => Encoding.UTF8.GetBytes(line[4..]))
            .ToArray();
    }
}
