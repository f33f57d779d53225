using System.Buffers;
using System.Text;

namespace Konsole.Actors.Protocol;

/// <summary>
/// Finds the top-level <c>"type"</c> of a JSON object fed in pieces, keeping none of it: what a line too long to keep was (the
/// CLI writes <c>"type"</c> anywhere among a frame's keys, in a result after its text). Not a validator: on malformed input it
/// answers null or a guess, which is all a dropped line's report needs.
/// </summary>
public sealed class TopLevelTypeScanner
{
    private const int MaxCaptured = 64; // keys and type names are short; longer strings are not what is looked for

    private readonly byte[] _captured = new byte[MaxCaptured];
    private int _length;
    private bool _overflow;
    private int _depth;
    private bool _inString;
    private bool _escaped;
    private bool _capturing;
    private bool _afterColon; // at depth 1, between a key's ':' and the ',' after its value
    private bool _keyIsType; // the key before that ':' was "type"
    private bool _lastWasType; // the string just ended at depth 1 was "type" (a key, if a ':' follows)

    /// <summary>The value of the object's top-level <c>type</c> once it has been read, or null.</summary>
    public string? Type { get; private set; }

    public void Feed(ReadOnlySequence<byte> bytes)
    {
        foreach (var segment in bytes)
            Feed(segment.Span);
    }

    public void Feed(ReadOnlySpan<byte> bytes)
    {
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
                    break;
                case (byte)'{' or (byte)'[':
                    _depth++;
                    break;
                case (byte)'}' or (byte)']':
                    _depth--;
                    break;
                case (byte)':' when _depth == 1:
                    _afterColon = true;
                    _keyIsType = _lastWasType;
                    break;
                case (byte)',' when _depth == 1:
                    _afterColon = false;
                    _keyIsType = false;
                    break;
            }
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)'"'))
                _lastWasType = false;
        }
    }

    private void StringEnded()
    {
        var value = _captured.AsSpan(0, _length);
        if (!_afterColon)
            _lastWasType = !_overflow && value.SequenceEqual("type"u8);
        else if (_keyIsType && Type is null && !_overflow)
            Type = Encoding.UTF8.GetString(value);
    }
}
