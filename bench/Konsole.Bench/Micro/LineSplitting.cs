using System.Buffers;
using BenchmarkDotNet.Attributes;
using Konsole.Actors.Protocol;

namespace Konsole.Bench.Micro;

/// <summary>
/// A stdout stream of recorded lines split by the codec's <see cref="LineReader"/>, against <see cref="StreamReader.ReadLineAsync()"/>
/// (the baseline: lines as strings, no length cap).
/// </summary>
[MemoryDiagnoser]
public class LineSplitting
{
    private byte[] _stream = [];

    [Params(1, 100)]
    public int Copies { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var lines = RecordedLines.Load();
        _stream = Enumerable.Repeat(lines, Copies).SelectMany(c => c).SelectMany(l => l.Append((byte)'\n')).ToArray();
    }

    [Benchmark(Baseline = true)]
    public async Task<int> StreamReaderLines()
    {
        using var reader = new StreamReader(new MemoryStream(_stream));
        var count = 0;
        while (await reader.ReadLineAsync() is not null)
            count++;
        return count;
    }

    [Benchmark]
    public async Task<int> LineReaderLines()
    {
        var count = 0;
        await LineReader.ReadLinesAsync(new MemoryStream(_stream), 64 << 20, _ => count++, _ => { });
        return count;
    }
}
