using System.IO.Pipelines;
using System.Text;
using Xunit;

namespace Konsole.Gateway.Tests;

/// <summary>How one event is written on the wire: id, event, one data line per line of the data, a blank line.</summary>
public sealed class SseWriterSpecs
{
    [Fact]
    public async Task A_json_line_is_written_verbatim_as_one_data_line()
    {
        var text = await WrittenAsync(new SseMessage("""{"type":"assistant","text":"grüße 👋"}"""u8.ToArray(), "assistant", 7));

        Assert.Equal("id: 7\nevent: assistant\ndata: {\"type\":\"assistant\",\"text\":\"grüße 👋\"}\n\n", text);
    }

    [Fact]
    public async Task Data_of_several_lines_becomes_several_data_lines_without_carriage_returns()
    {
        var text = await WrittenAsync(new SseMessage("one\r\ntwo\n\nthree"u8.ToArray(), "note"));

        Assert.Equal("event: note\ndata: one\ndata: two\ndata: \ndata: three\n\n", text);
    }

    [Fact]
    public async Task A_bare_carriage_return_ends_a_data_line_as_SSE_readers_take_it()
    {
        var text = await WrittenAsync(new SseMessage("{\"a\":1,\r\"b\":2}\r"u8.ToArray(), "x"));

        Assert.Equal("event: x\ndata: {\"a\":1,\ndata: \"b\":2}\ndata: \n\n", text); // was one field holding the CR, cut there by the client
    }

    [Fact]
    public async Task A_type_with_line_breaks_from_a_CLI_line_stays_one_field_and_large_ids_are_written_whole()
    {
        var text = await WrittenAsync(new SseMessage("{}"u8.ToArray(), "a\r\ndata: forged\nb", long.MaxValue));

        Assert.Equal($"id: {long.MaxValue}\nevent: a data: forged b\ndata: {{}}\n\n", text);
    }

    private static async Task<string> WrittenAsync(SseMessage item)
    {
        var output = new MemoryStream();
        var writer = PipeWriter.Create(output);
        SseResult.Write(writer, item);
        await writer.FlushAsync();
        return Encoding.UTF8.GetString(output.ToArray());
    }
}
