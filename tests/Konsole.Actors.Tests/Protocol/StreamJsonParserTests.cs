using System.Buffers;
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
        var line = new ReadOnlySequence<byte>("{\"type\":\"assistant\",\"session_id\":\"s-1\"}"u8.ToArray());
        var first = StreamJsonParser.Parse(line)!;
        var next = StreamJsonParser.Parse(line, first.SessionId)!;
        var other = StreamJsonParser.Parse(new ReadOnlySequence<byte>("{\"type\":\"assistant\",\"session_id\":\"s-2\"}"u8.ToArray()), first.SessionId)!;

        Assert.Same("assistant", first.Type);
        Assert.Same(first.SessionId, next.SessionId);
        Assert.Equal("s-2", other.SessionId);
    }

    [Fact]
    public void A_line_s_own_uuid_is_read_from_the_line_when_asked()
    {
        var frame = StreamJsonParser.Parse(new ReadOnlySequence<byte>(
            "{\"type\":\"assistant\",\"message\":{\"uuid\":\"inner\"},\"uuid\":\"u-1\",\"session_id\":\"s-1\"}"u8.ToArray()))!;
        var none = StreamJsonParser.Parse(new ReadOnlySequence<byte>("{\"type\":\"assistant\",\"uuid\":7}"u8.ToArray()))!;

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

    [Fact]
    public void Deep_nesting_inside_a_skipped_field_is_fine()
    {
        var deep = string.Concat(Enumerable.Repeat("[", 60)) + string.Concat(Enumerable.Repeat("]", 60));

        var frame = Parse(Encoding.UTF8.GetBytes($"{{\"message\":{deep},\"type\":\"assistant\"}}"));

        Assert.Equal("assistant", frame?.Type);
    }

    [Fact]
    public void A_line_split_over_many_buffer_segments_parses()
    {
        var text = $"{{\"type\":\"assistant\",\"message\":\"{new string('x', 100_000)}\",\"session_id\":\"s1\"}}";
        var bytes = Encoding.UTF8.GetBytes(text);

        var frame = StreamJsonParser.Parse(Segmented(bytes, 4096));

        Assert.Equal("assistant", frame?.Type);
        Assert.Equal("s1", frame?.SessionId);
        Assert.Equal(text, frame?.Raw);
    }

    private static CliFrame? Parse(byte[] line) => StreamJsonParser.Parse(new ReadOnlySequence<byte>(line));

    internal static ReadOnlySequence<byte> Segmented(byte[] bytes, int size)
    {
        Segment? first = null, last = null;
        for (var i = 0; i < bytes.Length; i += size)
        {
            var segment = new Segment(bytes.AsMemory(i, Math.Min(size, bytes.Length - i)), last);
            first ??= segment;
            last = segment;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is null) return;
            RunningIndex = previous.RunningIndex + previous.Memory.Length;
            previous.Next = this;
        }
    }
}
