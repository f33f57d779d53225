using System.Buffers;
using System.IO.Pipelines;

namespace Konsole.Actors.Protocol;

/// <summary>
/// Splits a byte stream into lines of any length up to <c>maxLineBytes</c>. A longer line is
/// discarded without being buffered past the cap (its size is reported), and reading goes on with
/// the next line: an oversized frame must not take the process down with it. <c>onReadEnd</c> runs after the lines of
/// each read from the stream, so a consumer can hand on everything one read brought at once.
/// </summary>
public static class LineReader
{
    public static async Task ReadLinesAsync(
        Stream stream,
        long maxLineBytes,
        Action<ReadOnlySequence<byte>> onLine,
        Action<long> onOversizedLine,
        Action? onReadEnd = null,
        CancellationToken cancellationToken = default)
    {
        // Small segments: every idle process holds one while its read waits (a pipe's zero-byte read does not wait here), and a
        // long line just takes more of them.
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4 * 1024, leaveOpen: true));
        long skipped = -1; // >= 0 while discarding the rest of an oversized line: bytes dropped so far
        long scanned = 0;  // bytes at the start of the buffer already known to hold no newline
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = read.Buffer;
                while (TryTakeLine(ref buffer, ref scanned, out var line))
                {
                    if (skipped >= 0)
                    {
                        onOversizedLine(skipped + line.Length);
                        skipped = -1;
                    }
                    else if (line.Length > maxLineBytes)
                        onOversizedLine(line.Length);
                    else
                        onLine(TrimCarriageReturn(line));
                }

                if (skipped >= 0 || buffer.Length > maxLineBytes)
                {
                    // No newline yet and already over the cap: drop what we have, keep counting.
                    skipped = Math.Max(skipped, 0) + buffer.Length;
                    buffer = buffer.Slice(buffer.End);
                    scanned = 0;
                }

                if (read.IsCompleted)
                {
                    if (skipped >= 0) onOversizedLine(skipped);
                    else if (buffer.Length > 0) onLine(TrimCarriageReturn(buffer));
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
