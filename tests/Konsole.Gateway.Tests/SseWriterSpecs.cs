using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Text;
using Xunit;

namespace Konsole.Gateway.Tests;

/// <summary>How one event is written on the wire: id, event, one data line per line of the data, a blank line.</summary>
public sealed class SseWriterSpecs
{
    [Fact]
    public async Task A_json_line_is_written_verbatim_as_one_data_line()
    {
        var text = await WrittenAsync(new SseItem<ReadOnlyMemory<byte>>("""{"type":"assistant","text":"grüße 👋"}"""u8.ToArray(), "assistant") { EventId = "7" });

        Assert.Equal("id: 7\nevent: assistant\ndata: {\"type\":\"assistant\",\"text\":\"grüße 👋\"}\n\n", text);
    }

    [Fact]
    public async Task Data_of_several_lines_becomes_several_data_lines_without_carriage_returns()
    {
        var text = await WrittenAsync(new SseItem<ReadOnlyMemory<byte>>("one\r\ntwo\n\nthree"u8.ToArray(), "note"));

        Assert.Equal("event: note\ndata: one\ndata: two\ndata: \ndata: three\n\n", text);
    }

    private static async Task<string> WrittenAsync(SseItem<ReadOnlyMemory<byte>> item)
    {
        var output = new MemoryStream();
        var writer = PipeWriter.Create(output);
        SseResult.Write(writer, item);
        await writer.FlushAsync();
        return Encoding.UTF8.GetString(output.ToArray());
    }
}
