using System.Text;
using System.Text.Json.Nodes;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Tests.Protocol;

public sealed class StreamJsonWriterTests
{
    [Theory]
    [InlineData("line one\nline two\r\nthree")]
    [InlineData("quotes \" and \\ backslashes")]
    [InlineData("ünïcödé, 日本語, emoji 🎉")]
    [InlineData("\u2028 line and paragraph separators \u2029")]
    [InlineData("{\"type\":\"user\",\"message\":{\"role\":\"assistant\"}}")]
    [InlineData("control \u0000 \u0001 \u001f chars")]
    public void Any_text_becomes_exactly_one_line_holding_that_text(string text)
    {
        var line = StreamJsonWriter.UserMessage(text, "u-1");

        Assert.Single(line, b => b == (byte)'\n');
        Assert.DoesNotContain((byte)'\r', line);
        var json = JsonNode.Parse(line)!;
        Assert.Equal("user", json["type"]!.GetValue<string>());
        Assert.Equal("user", json["message"]!["role"]!.GetValue<string>());
        Assert.Equal(text, json["message"]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("u-1", json["uuid"]!.GetValue<string>());
    }

    [Fact]
    public void A_lone_surrogate_is_replaced_rather_than_breaking_the_line()
    {
        var line = StreamJsonWriter.UserMessage("broken \ud800 text", "u-1");

        Assert.Equal("broken \ufffd text", JsonNode.Parse(line)!["message"]!["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Control_requests_have_the_documented_shape()
    {
        var line = Encoding.UTF8.GetString(StreamJsonWriter.ControlRequest("req_1", "initialize"));

        Assert.Equal("{\"type\":\"control_request\",\"request_id\":\"req_1\",\"request\":{\"subtype\":\"initialize\"}}\n", line);
    }

    [Fact]
    public void Interrupts_also_drop_what_the_cli_has_queued()
    {
        var line = Encoding.UTF8.GetString(StreamJsonWriter.Interrupt("req_2"));

        Assert.Equal("{\"type\":\"control_request\",\"request_id\":\"req_2\",\"request\":{\"subtype\":\"interrupt\",\"cancel_queued\":true}}\n", line);
    }
}
