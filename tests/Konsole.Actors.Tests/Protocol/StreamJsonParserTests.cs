using System.Text;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Tests.Protocol;

public sealed class StreamJsonParserTests
{
    [Theory]
    [InlineData("")]
    [InlineData("plain text on stdout")]
    [InlineData("{\"type\":\"assistant\",\"mess")]
    [InlineData("[1,2,3]")]
    [InlineData("\"a string\"")]
    [InlineData("{\"type\":\"result\"} trailing")]
    [InlineData("{\"type\":\"result\"}{\"type\":\"result\"}")]
    [InlineData("{\"a\":[1,2,{\"b\":")]
    [InlineData("{,}")]
    public void Lines_that_are_not_one_JSON_object_are_not_frames(string line)
    {
        Assert.Null(Parse(Encoding.UTF8.GetBytes(line)));
    }

    [Fact]
    public void A_known_type_and_a_session_id_seen_before_are_shared_not_copied_per_line()
    {
        var line = "{\"type\":\"assistant\",\"session_id\":\"s-1\"}"u8.ToArray();
        var first = StreamJsonParser.Parse(line)!;
        var next = StreamJsonParser.Parse(line, first.SessionId)!;
        var other = StreamJsonParser.Parse("{\"type\":\"assistant\",\"session_id\":\"s-2\"}"u8.ToArray(), first.SessionId)!;

        Assert.Same("assistant", first.Type);
        Assert.Same(first.SessionId, next.SessionId);
        Assert.Equal("s-2", other.SessionId);
    }

    [Fact]
    public void A_line_s_own_uuid_is_read_from_the_line_when_asked()
    {
        var frame = StreamJsonParser.Parse(
            "{\"type\":\"assistant\",\"message\":{\"uuid\":\"inner\"},\"uuid\":\"u-1\",\"session_id\":\"s-1\"}"u8.ToArray())!;
        var none = StreamJsonParser.Parse("{\"type\":\"assistant\",\"uuid\":7}"u8.ToArray())!;

        Assert.Equal(("u-1", "s-1"), (frame.Uuid, frame.SessionId));
        Assert.Null(none.Uuid);
    }

    [Fact]
    public void Invalid_utf8_never_throws()
    {
        Assert.Null(Parse([0xC3, 0x28, 0xFF, (byte)'{']));
        Assert.Null(Parse([(byte)'{', 0xC3, 0x28, 0xFF, (byte)'}']));
    }

    [Theory]
    [InlineData("{}", null)]
    [InlineData("{\"x\":1}", null)]
    [InlineData("{\"type\":5}", null)]
    [InlineData("{\"type\":\"mystery_frame\",\"x\":{\"y\":[1,2]}}", "mystery_frame")]
    [InlineData("{\"nested\":{\"type\":\"result\"},\"type\":\"assistant\"}", "assistant")]
    public void Only_the_top_level_type_counts_and_unknown_types_pass(string line, string? type)
    {
        var frame = Parse(Encoding.UTF8.GetBytes(line));

        Assert.NotNull(frame);
        Assert.Equal(type, frame.Type);
        Assert.Equal(line, frame.Raw);
    }

    [Theory]
    [InlineData(60)]
    [InlineData(10_000)] // deeper than Utf8JsonReader's default limit of 64
    public void Deep_nesting_inside_a_skipped_field_is_fine(int depth)
    {
        var deep = string.Concat(Enumerable.Repeat("[", depth)) + string.Concat(Enumerable.Repeat("]", depth));

        var frame = Parse(Encoding.UTF8.GetBytes($"{{\"message\":{deep},\"type\":\"assistant\"}}"));

        Assert.Equal("assistant", frame?.Type);
    }

    [Fact]
    public void Strings_dotnet_cannot_decode_are_read_lossily_and_the_line_passes_through()
    {
        // Valid JSON escapes for a lone surrogate (Node prints them for a cut emoji), and invalid UTF-8 inside the quotes.
        byte[][] lines =
        [
            Encoding.UTF8.GetBytes("""{"type":"result","subtype":"x\ud800","session_id":"s\udc00","is_error":false}"""),
            Encoding.UTF8.GetBytes("""{"type":"assistant\ud83d","session_id":"s1"}"""),
            [.. "{\"type\":\"result\",\"subtype\":\""u8, 0xC3, 0x28, 0xFF, .. "\",\"session_id\":\"s1\"}"u8],
            Encoding.UTF8.GetBytes("""{"type":"control_response","response":{"subtype":"error","request_id":"r\ud800","error":"bad \udfff"}}"""),
            Encoding.UTF8.GetBytes("""{"type":"rate_limit_event","rate_limit_info":{"status":"rejected\ud800","resetsAt":1e400,"utilization":1e400,"rateLimitType":"x"}}"""),
            Encoding.UTF8.GetBytes("""{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":9223372036854775807,"utilization":-1e999}}"""),
            Encoding.UTF8.GetBytes("""{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":-9223372036854775808}}"""),
            Encoding.UTF8.GetBytes("""{"is_error":{"odd":[1]},"type":"result","session_id":"s1"}"""), // an error flag that is no boolean
        ];

        foreach (var line in lines)
        {
            var frame = Parse(line);
            Assert.NotNull(frame);
            Assert.Equal(line, frame.Line.ToArray());
        }
        Assert.Equal("result", Parse(lines[0])!.Type);
        Assert.StartsWith("x", Parse(lines[0])!.Subtype);
        Assert.Equal("result", Parse(lines[2])!.Type);
        Assert.Equal("s1", Parse(lines[2])!.SessionId);
        Assert.Equal("r\\ud800", Parse(lines[3])!.ControlResponse!.RequestId);
        var limit = Parse(lines[5])!.RateLimit!;
        Assert.Equal("rejected", limit.Status);
        Assert.Null(limit.ResetsAt);
        Assert.Null(limit.Utilization);
    }

    [Fact]
    public void A_top_level_name_dotnet_cannot_decode_makes_the_line_skipped_not_thrown() =>
        Assert.Null(Parse(Encoding.UTF8.GetBytes("""{"\ud800":1,"type":"assistant"}""")));

    private static CliFrame? Parse(byte[] line) => StreamJsonParser.Parse(line);
}
