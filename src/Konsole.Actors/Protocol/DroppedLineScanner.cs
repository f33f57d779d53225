using System.Buffers;
using System.Text;

namespace Konsole.Actors.Protocol;

/// <summary>A stdout line over the cap, dropped: its length, and what it was (its top-level fields, when it was a whole JSON object).</summary>
/// <param name="Type">Its top-level <c>type</c>; null when not read, or when the line was cut short (the stream ended in it).</param>
/// <param name="UserMessageUuid">Its top-level <c>user_message_uuid</c> (a result's: the prompt it answers), if any.</param>
public sealed record DroppedLine(long Bytes, string? Type, string? UserMessageUuid);

/// <summary>
/// Reads the top-level <c>type</c> and <c>user_message_uuid</c> of a JSON object fed in pieces, keeping none of the rest: what a
/// line too long to keep was (the CLI writes <c>type</c> anywhere among a frame's keys, in a result after its text). Not a
/// validator: on malformed input it answers null or a guess, which is all a dropped line's report needs.
/// </summary>
public sealed class DroppedLineScanner
{
    private const int MaxCaptured = 64; // keys, type names and uuids are short; longer strings are not what is looked for

    private enum Field { None, Type, UserMessageUuid }

    private readonly byte[] _captured = new byte[MaxCaptured];
    private int _length;
    private bool _overflow;
    private int _depth;
    private bool _inString;
    private bool _escaped;
    private bool _capturing;
    private bool _afterColon; // at depth 1, between a key's ':' and the ',' after its value
    private Field _valueOf; // the field whose value follows that ':'
    private Field _lastKey; // the field named by the string just ended at depth 1 (a key, if a ':' follows)
    private string? _type;
    private string? _userMessageUuid;

    /// <summary>The bytes fed so far.</summary>
    public long Bytes { get; private set; }

    public void Feed(ReadOnlySequence<byte> bytes)
    {
        foreach (var segment in bytes)
            Feed(segment.Span);
    }

    public void Feed(ReadOnlySpan<byte> bytes)
    {
        Bytes += bytes.Length;
        foreach (var b in bytes)
        {
            if (_inString)
            {
                if (_escaped)
                    _escaped = false;
                else if (b == '\\')
                    _escaped = true;
                else if (b == '"')
                {
                    _inString = false;
                    if (_capturing)
                        StringEnded();
                    continue;
                }
                if (_capturing)
                {
                    if (_length < MaxCaptured)
                        _captured[_length++] = b;
                    else
                        _overflow = true;
                }
                continue;
            }
            switch (b)
            {
                case (byte)'"':
                    _inString = true;
                    _capturing = _depth == 1;
                    _length = 0;
                    _overflow = false;
                    continue;
                case (byte)'{' or (byte)'[':
                    _depth++;
                    break;
                case (byte)'}' or (byte)']':
                    _depth--;
                    break;
                case (byte)':' when _depth == 1:
                    _afterColon = true;
                    _valueOf = _lastKey;
                    break;
                case (byte)',' when _depth == 1:
                    _afterColon = false;
                    _valueOf = Field.None;
                    break;
                case (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n':
                    continue;
            }
            _lastKey = Field.None;
        }
    }

    /// <summary>What the line was, once all of it has been fed.</summary>
    public DroppedLine Line() => new(Bytes, _type, _userMessageUuid);

    private void StringEnded()
    {
        if (_overflow)
        {
            _lastKey = Field.None;
            return;
        }
        var text = _captured.AsSpan(0, _length);
        if (!_afterColon)
            _lastKey = text.SequenceEqual("type"u8) ? Field.Type : text.SequenceEqual("user_message_uuid"u8) ? Field.UserMessageUuid : Field.None;
        else if (_valueOf == Field.Type)
            _type ??= Encoding.UTF8.GetString(text);
        else if (_valueOf == Field.UserMessageUuid)
            _userMessageUuid ??= Encoding.UTF8.GetString(text);
    }
}
