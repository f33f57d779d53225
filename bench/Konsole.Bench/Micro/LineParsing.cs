using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Konsole.Actors.Protocol;

namespace Konsole.Bench.Micro;

/// <summary>
/// Every recorded stdout line through the codec's routing parser, against a full <see cref="JsonDocument"/> parse of the
/// same line (the baseline: what reading a frame as a DOM would cost).
/// </summary>
[MemoryDiagnoser]
public class LineParsing
{
    private ReadOnlyMemory<byte>[] _lines = [];

    [GlobalSetup]
    public void Setup() => _lines = RecordedLines.Load().Select(l => new ReadOnlyMemory<byte>(l)).ToArray();

    [Benchmark(Baseline = true)]
    public int JsonDocumentParse()
    {
        var types = 0;
        foreach (var line in _lines)
        {
            using var document = JsonDocument.Parse(line);
            if (document.RootElement.TryGetProperty("type", out _))
                types++;
        }
        return types;
    }

    [Benchmark]
    public int StreamJsonParserParse()
    {
        var types = 0;
        foreach (var line in _lines)
        {
            if (StreamJsonParser.Parse(line)?.Type is not null)
                types++;
        }
        return types;
    }
}
