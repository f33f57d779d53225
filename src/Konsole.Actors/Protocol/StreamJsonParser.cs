using System.Text;
using System.Text.Json;

namespace Konsole.Actors.Protocol;

/// <summary>
/// Parses one stdout line of the CLI. Reads only the top-level fields routing needs and skips the rest,
/// so a frame's cost does not depend on how deep its content is. Never throws on bad input.
/// </summary>
public static class StreamJsonParser
{
    // The frame types the CLI prints, shared instead of a new string per line (a session keeps each event's type).
    private static readonly string[] KnownTypes =
    [
        "assistant", "user", "system", "result", "stream_event", "rate_limit_event", "command_lifecycle", "control_response",
        "control_request", "conversation_reset",
    ];

    // Routing reads only the top level, but the rest is skipped token by token: a line nested deeper than the reader's
    // default 64 levels is still one JSON object to pass through.
    private static readonly JsonReaderOptions Options = new() { MaxDepth = int.MaxValue };

    /// <summary>
    /// Returns the frame, or null when the line is not a JSON object (the caller logs and skips it). A
    /// <paramref name="sessionId"/> the line carries again (every line of a conversation does) is returned as that instance.
    /// The frame keeps <paramref name="line"/> as its <see cref="CliFrame.Line"/>, not a copy: pass memory nothing writes to again.
    /// </summary>
    public static CliFrame? Parse(ReadOnlyMemory<byte> line, string? sessionId = null)
    {
        if (line.IsEmpty || line.Span[0] != (byte)'{')
            return null;
        try
        {
            return ParseObject(line, sessionId);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) // an undecodable top-level name
        {
            return null;
        }
    }

    private static CliFrame ParseObject(ReadOnlyMemory<byte> line, string? knownSessionId)
    {
        var reader = new Utf8JsonReader(line.Span, Options);
        reader.Read(); // StartObject
        string? type = null, subtype = null, sessionId = null, userMessageUuid = null, commandUuid = null, state = null;
        var isError = false;
        RateLimitInfo? rateLimit = null;
        ControlResponseInfo? control = null;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8)) type = ReadString(ref reader, KnownTypes);
            else if (reader.ValueTextEquals("subtype"u8)) subtype = ReadString(ref reader);
            else if (reader.ValueTextEquals("session_id"u8)) sessionId = ReadString(ref reader, knownSessionId is null ? [] : [knownSessionId]);
            else if (reader.ValueTextEquals("user_message_uuid"u8)) userMessageUuid = ReadString(ref reader);
            else if (reader.ValueTextEquals("command_uuid"u8)) commandUuid = ReadString(ref reader);
            else if (reader.ValueTextEquals("state"u8)) state = ReadString(ref reader);
            else if (reader.ValueTextEquals("is_error"u8))
            {
                reader.Read();
                isError = reader.TokenType == JsonTokenType.True;
                reader.Skip(); // anything but a boolean is not an error flag, and must not end the read
            }
            else if (reader.ValueTextEquals("rate_limit_info"u8)) rateLimit = ReadRateLimit(ref reader);
            else if (reader.ValueTextEquals("response"u8)) control = ReadControlResponse(ref reader);
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            throw new JsonException("trailing content after the object");

        return new CliFrame(line, type, subtype, sessionId, userMessageUuid,
            isError, rateLimit, type == "control_response" ? control : null,
            type == "command_lifecycle" ? new CommandLifecycle(commandUuid, state) : null);
    }

    /// <summary>A top-level whole-number field of a line (null when absent, not a whole number, or the line is not JSON), read again.</summary>
    internal static int? TopLevelInt(ReadOnlySpan<byte> line, ReadOnlySpan<byte> name) => TopLevel(line, name,
        static (ref Utf8JsonReader reader) => reader.Read() && reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) ? value : (int?)null);

    /// <summary>A top-level string field of a line (null when absent, not a string, or the line is not JSON), read again.</summary>
    internal static string? TopLevelString(ReadOnlySpan<byte> line, ReadOnlySpan<byte> name) =>
        TopLevel(line, name, static (ref Utf8JsonReader reader) => ReadString(ref reader));

    private delegate T ValueReader<out T>(ref Utf8JsonReader reader);

    /// <summary>A top-level field of a line, read by <paramref name="read"/> (given the reader at its name); default when absent or not JSON.</summary>
    private static T? TopLevel<T>(ReadOnlySpan<byte> line, ReadOnlySpan<byte> name, ValueReader<T> read)
    {
        try
        {
            var reader = new Utf8JsonReader(line, Options);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals(name))
                    return read(ref reader);
                reader.Read();
                reader.Skip();
            }
            return default;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) // an undecodable top-level name
        {
            return default;
        }
    }

    /// <summary>
    /// The string value (null when it is not a string), as one of <paramref name="known"/> when it equals one. A string
    /// .NET cannot decode (invalid UTF-8 inside the quotes, or a lone surrogate such as <c>\ud800</c>, which JSON allows)
    /// is returned as its bytes decoded with replacement characters, escapes as written.
    /// </summary>
    private static string? ReadString(ref Utf8JsonReader reader, scoped ReadOnlySpan<string> known = default)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return null;
        }
        try
        {
            foreach (var candidate in known)
            {
                if (reader.ValueTextEquals(candidate))
                    return candidate;
            }
            return reader.GetString();
        }
        catch (InvalidOperationException)
        {
            return Encoding.UTF8.GetString(reader.ValueSpan);
        }
    }

    private static readonly long MinUnixSeconds = DateTimeOffset.MinValue.ToUnixTimeSeconds();
    private static readonly long MaxUnixSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    private static RateLimitInfo? ReadRateLimit(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return null;
        }
        string? status = null, limitType = null;
        DateTimeOffset? resetsAt = null;
        double? utilization = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("status"u8)) status = ReadString(ref reader);
            else if (reader.ValueTextEquals("rateLimitType"u8)) limitType = ReadString(ref reader);
            else if (reader.ValueTextEquals("resetsAt"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var seconds)
                    && seconds >= MinUnixSeconds && seconds <= MaxUnixSeconds)
                    resetsAt = DateTimeOffset.FromUnixTimeSeconds(seconds);
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("utilization"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var value) && double.IsFinite(value)) utilization = value;
                else reader.Skip();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new RateLimitInfo(status, resetsAt, limitType, utilization);
    }

    private static ControlResponseInfo? ReadControlResponse(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return null;
        }
        string? subtype = null, requestId = null, error = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("subtype"u8)) subtype = ReadString(ref reader);
            else if (reader.ValueTextEquals("request_id"u8)) requestId = ReadString(ref reader);
            else if (reader.ValueTextEquals("error"u8)) error = ReadString(ref reader);
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new ControlResponseInfo(subtype, requestId, error);
    }
}
