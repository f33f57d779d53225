using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Text;
using BenchmarkDotNet.Attributes;
using Konsole.Gateway;

namespace Konsole.Bench.Micro;

/// <summary>
/// The recorded lines as SSE events (id, event, data): the gateway's writer against .NET's own
/// <see cref="SseFormatter"/> (the baseline, given the same UTF-8 lines, and their ids as strings made beforehand: the
/// gateway's writer formats each id itself), and against the writer the gateway had before (the line kept as a string,
/// and a string built per event).
/// </summary>
[MemoryDiagnoser]
public class SseWriting
{
    private SseItem<ReadOnlyMemory<byte>>[] _sseItems = [];
    private SseMessage[] _items = [];
    private SseItem<string>[] _texts = [];

    [GlobalSetup]
    public void Setup()
    {
        _items = RecordedLines.Load()
            .Select((l, i) => new SseMessage(l, "assistant", i))
            .ToArray();
        _sseItems = _items.Select(i => new SseItem<ReadOnlyMemory<byte>>(i.Data, i.Type) { EventId = i.Id.ToString() }).ToArray();
        _texts = _items.Select(i => new SseItem<string>(Encoding.UTF8.GetString(i.Data.Span), i.Type) { EventId = i.Id.ToString() }).ToArray();
    }

    [Benchmark(Baseline = true)]
    public Task SseFormatterWrite() => SseFormatter.WriteAsync(Items(), Stream.Null, (item, writer) => writer.Write(item.Data.Span));

    [Benchmark]
    public async Task GatewayWrite()
    {
        var writer = PipeWriter.Create(Stream.Null);
        foreach (var item in _items)
            SseResult.Write(writer, item);
        await writer.FlushAsync();
    }

    [Benchmark]
    public async Task StringPerEventWrite()
    {
        var writer = PipeWriter.Create(Stream.Null);
        foreach (var item in _texts)
        {
            var text = new StringBuilder(item.Data.Length + 64);
            text.Append("id: ").Append(item.EventId).Append('\n');
            text.Append("event: ").Append(item.EventType).Append('\n');
            foreach (var line in item.Data.Split('\n'))
                text.Append("data: ").Append(line.TrimEnd('\r')).Append('\n');
            text.Append('\n');
            writer.Write(Encoding.UTF8.GetBytes(text.ToString()));
        }
        await writer.FlushAsync();
    }

#pragma warning disable CS1998 // an async iterator over an array
    private async IAsyncEnumerable<SseItem<ReadOnlyMemory<byte>>> Items()
    {
        foreach (var item in _sseItems)
            yield return item;
    }
#pragma warning restore CS1998
}
