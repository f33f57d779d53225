using System.Text;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Tests.Protocol;

public sealed class LineReaderTests
{
    [Fact]
    public async Task Splits_lines_keeps_empty_ones_strips_CR_and_keeps_an_unterminated_last_line()
    {
        var (lines, oversized) = await Read("a\nbb\r\n\nlast", cap: 100);

        Assert.Equal(["a", "bb", "", "last"], lines);
        Assert.Empty(oversized);
    }

    [Theory]
    [InlineData("aaaa\nddddd", 5L)] // one byte over the cap, without its newline: was passed on
    [InlineData("aaaa\ndddd\r", 0L)] // at the cap, its CR the stream's last byte
    [InlineData("aaaa\ndddd", 0L)]
    public async Task An_unterminated_last_line_is_held_to_the_cap_too(string text, long dropped)
    {
        var (lines, oversized) = await Read(text, cap: 4);

        Assert.Equal(dropped == 0 ? ["aaaa", "dddd"] : ["aaaa"], lines);
        Assert.Equal(dropped == 0 ? [] : [dropped], oversized);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task Lines_arriving_in_any_chunk_size_come_out_whole(int chunk)
    {
        var expected = Enumerable.Range(0, 50).Select(i => new string((char)('a' + i % 26), i * 37)).ToList();

        var (lines, _) = await Read(string.Join("\n", expected) + "\n", cap: 10_000, chunk);

        Assert.Equal(expected, lines);
    }

    [Fact]
    public async Task An_8_MB_line_within_the_cap_is_read_whole()
    {
        var big = new string('x', 8 * 1024 * 1024);

        var (lines, oversized) = await Read($"before\n{big}\nafter\n", cap: 64L * 1024 * 1024, chunk: 64 * 1024);

        Assert.Equal(["before", big, "after"], lines);
        Assert.Empty(oversized);
    }

    [Fact]
    public async Task A_line_over_the_cap_is_dropped_with_its_size_and_reading_goes_on()
    {
        var big = new string('x', 300_000);

        var (lines, oversized) = await Read($"before\n{big}\nafter\n{big}", cap: 100_000, chunk: 8192);

        Assert.Equal(["before", "after"], lines);
        Assert.Equal([300_000L, 300_000L], oversized);
    }

    [Theory]
    [InlineData(1 << 20)]
    [InlineData(1)]
    public async Task A_line_exactly_at_the_cap_is_read_whatever_its_line_ending(int chunk)
    {
        var (lines, oversized) = await Read("aaaa\nbbbb\r\ncccc\r\nddddd\r\n", cap: 4, chunk);

        Assert.Equal(["aaaa", "bbbb", "cccc"], lines);
        Assert.Equal([6L], oversized); // "ddddd\r"
    }

    [Fact]
    public async Task Each_read_ends_after_the_lines_it_completed_so_a_consumer_can_hand_them_on_together()
    {
        var reads = new List<List<string>>();
        var current = new List<string>();

        // 10-byte reads: "a\nbb\nccc\nd" | "ddd\ne\n" (the last line has no newline and ends the stream).
        await LineReader.ReadLinesAsync(new ChunkedStream("a\nbb\nccc\ndddd\ne\nf"u8.ToArray(), 10), 100,
            line => current.Add(Encoding.UTF8.GetString(line.Span)), _ => { },
            onReadEnd: () =>
            {
                reads.Add(current);
                current = [];
            });

        Assert.Equal(["a", "bb", "ccc", "dddd", "e", "f"], reads.SelectMany(r => r));
        Assert.Equal(["a", "bb", "ccc"], reads[0]);
        Assert.Empty(current); // nothing came after the last read ended
    }

    [Fact]
    public async Task Lines_kept_as_handed_on_stay_intact_after_later_reads_and_one_over_many_segments_parses_whole()
    {
        var frame = $"{{\"type\":\"assistant\",\"message\":\"{new string('x', 100_000)}\",\"session_id\":\"s1\"}}";
        var expected = Enumerable.Range(0, 500).Select(i => $"line {i} " + new string('y', i % 90)).Append(frame).Append("after").ToList();
        var kept = new List<ReadOnlyMemory<byte>>();

        // 4 KB reads, as from a pipe: the 100 KB line spans many of the reader's buffer segments.
        await LineReader.ReadLinesAsync(new ChunkedStream(Encoding.UTF8.GetBytes(string.Join("\n", expected) + "\n"), 4096), 1 << 20,
            kept.Add, _ => { });

        Assert.Equal(expected, kept.Select(line => Encoding.UTF8.GetString(line.Span)));
        var parsed = StreamJsonParser.Parse(kept[500]);
        Assert.Equal(("assistant", "s1"), (parsed?.Type, parsed?.SessionId));
    }

    [Fact]
    public async Task Invalid_utf8_is_passed_on_as_bytes()
    {
        var collected = new List<byte[]>();
        await LineReader.ReadLinesAsync(new MemoryStream([0xC3, 0x28, (byte)'\n', 0xFF]), 100, l => collected.Add(l.ToArray()), _ => { });

        Assert.Equal([[0xC3, 0x28], [0xFF]], collected);
    }

    [Theory]
    [InlineData(100_000)] // one read takes the whole line
    [InlineData(4096)] // the line is dropped in pieces as it comes
    [InlineData(7)]
    public async Task An_oversized_line_is_reported_with_its_top_level_type_and_user_message_uuid_wherever_they_stand(int chunk)
    {
        // As the real CLI writes a result: "type" after its (here too long) text; nested keys and escaped quotes before it.
        var result = $$"""{"usage":{"type":"x","user_message_uuid":"no","n":[{"type":"y"}]},"result":"{{new string('x', 20_000)}} \"type\":\"no\"","type":"result","user_message_uuid":"p-1"}""";
        var assistant = """{"type":"assistant","message":{"content":[{"type":"text","text":"x"}]}}""" + new string(' ', 300);
        var cutShort = """{"type":"result","result":"xxxxxxxxxx""" + new string('x', 300); // the stream ends inside it
        var reported = new List<DroppedLine>();

        await LineReader.ReadLinesAsync(new ChunkedStream(Encoding.UTF8.GetBytes($"{result}\nok\n{assistant}\nnot json {new string('z', 300)}\n{cutShort}"), chunk),
            200, _ => { }, reported.Add, segmentBytes: Math.Max(chunk, 4096));

        Assert.Equal([new DroppedLine(result.Length, "result", "p-1"), new DroppedLine(assistant.Length, "assistant", null), new DroppedLine(309, null, null),
            new DroppedLine(cutShort.Length, null, null)], reported);
    }

    private static async Task<(List<string> Lines, List<long> Oversized)> Read(string text, long cap, int chunk = 1 << 20)
    {
        var lines = new List<string>();
        var oversized = new List<long>();
        await LineReader.ReadLinesAsync(new ChunkedStream(Encoding.UTF8.GetBytes(text), chunk), cap,
            line => lines.Add(Encoding.UTF8.GetString(line.Span)), dropped => oversized.Add(dropped.Bytes));
        return (lines, oversized);
    }

    /// <summary>Returns at most <c>chunk</c> bytes per read, like a pipe.</summary>
    private sealed class ChunkedStream(byte[] data, int chunk) : Stream
    {
        private int _position;
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, chunk), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
