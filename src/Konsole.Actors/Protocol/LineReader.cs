using System.Buffers;
using System.IO.Pipelines;

namespace Konsole.Actors.Protocol;

/// <summary>
/// Splits a byte stream into lines of any length up to <c>maxLineBytes</c>. A longer line is
/// discarded without being buffered past the cap (reported as a <see cref="DroppedLine"/>: its size, and what it was), and
/// reading goes on with the next line: an oversized frame must not take the process down with it. <c>onReadEnd</c> runs after the lines of
/// each read from the stream, so a consumer can hand on everything one read brought at once.
/// Each line is handed on as memory of its own that is never written again (a consumer may keep it): the lines of one read
/// are copied together into one array, so a consumer keeping thousands of lines keeps few objects.
/// </summary>
public static class LineReader
{
    public static async Task ReadLinesAsync(
        Stream stream,
        long maxLineBytes,
        Action<ReadOnlyMemory<byte>> onLine,
        Action<DroppedLine> onOversizedLine,
        Action? onReadEnd = null,
        CancellationToken cancellationToken = default,
        int segmentBytes = 4 * 1024)
    {
        // Small segments: every idle process holds one while its read waits (a pipe's zero-byte read does not wait here), and a
        // long line just takes more of them.
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: segmentBytes, leaveOpen: true));
        var lines = new Batch(onLine);
        DroppedLineScanner? dropped = null; // while discarding the rest of an oversized line: what it is, and its bytes so far
        long scanned = 0;  // bytes at the start of the buffer already known to hold no newline
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = read.Buffer;
                while (TryTakeLine(ref buffer, ref scanned, out var line))
                {
                    if (dropped is null && TrimCarriageReturn(line) is var trimmed && trimmed.Length <= maxLineBytes)
                        lines.Add(trimmed);
                    else
                    {
                        // The end of a line being discarded, or a whole one over the cap.
                        lines.Flush();
                        (dropped ??= new DroppedLineScanner()).Feed(line);
                        onOversizedLine(dropped.Line());
                        dropped = null;
                    }
                }
                lines.Flush(); // before the buffer they point into is given back

                if (dropped is not null || buffer.Length > maxLineBytes + 1) // + the \r of a \r\n still to come
                {
                    // No newline yet and already over the cap: drop what we have, keep counting.
                    (dropped ??= new DroppedLineScanner()).Feed(buffer);
                    buffer = buffer.Slice(buffer.End);
                    scanned = 0;
                }

                if (read.IsCompleted)
                {
                    if (dropped is not null) onOversizedLine(new DroppedLine(dropped.Bytes, null, null)); // cut short: not a whole frame
                    else if (buffer.Length > 0 && TrimCarriageReturn(buffer) is var last && last.Length <= maxLineBytes)
                    {
                        lines.Add(last);
                        lines.Flush();
                    }
                    else if (buffer.Length > 0) // one byte over the cap (the room kept for a \r), and cut short as the one above
                        onOversizedLine(new DroppedLine(buffer.Length, null, null));
                    onReadEnd?.Invoke();
                    return;
                }
                onReadEnd?.Invoke();
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Lines of one read, handed on together from one array (up to <see cref="MaxBlock"/> bytes each unless a line is longer).</summary>
    private sealed class Batch(Action<ReadOnlyMemory<byte>> onLine)
    {
        // Under the large object heap's threshold; and a line a consumer keeps keeps at most this much of other lines alive.
        private const long MaxBlock = 64 * 1024;

        private readonly List<ReadOnlySequence<byte>> _lines = [];
        private long _bytes;

        public void Add(ReadOnlySequence<byte> line)
        {
            if (_bytes + line.Length > MaxBlock)
                Flush();
            _lines.Add(line);
            _bytes += line.Length;
        }

        public void Flush()
        {
            if (_lines.Count == 0)
                return;
            var block = GC.AllocateUninitializedArray<byte>((int)_bytes);
            var at = 0;
            foreach (var line in _lines)
            {
                line.CopyTo(block.AsSpan(at));
                onLine(block.AsMemory(at, (int)line.Length));
                at += (int)line.Length;
            }
            _lines.Clear();
            _bytes = 0;
        }
    }

    private static bool TryTakeLine(ref ReadOnlySequence<byte> buffer, ref long scanned, out ReadOnlySequence<byte> line)
    {
        var newline = buffer.Slice(scanned).PositionOf((byte)'\n');
        if (newline is null)
        {
            scanned = buffer.Length;
            line = default;
            return false;
        }
        line = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        scanned = 0;
        return true;
    }

    /// <summary>The line without a trailing <c>\r</c> (a CRLF line ending).</summary>
    public static ReadOnlySequence<byte> TrimCarriageReturn(ReadOnlySequence<byte> line) =>
        line.Length > 0 && line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r' ? line.Slice(0, line.Length - 1) : line;
}
