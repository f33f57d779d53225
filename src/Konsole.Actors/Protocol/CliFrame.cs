using System.Text;

namespace Konsole.Actors.Protocol;

/// <summary>
/// One line the CLI printed on stdout: its UTF-8 bytes, kept verbatim for pass-through (never decoded on the way to a
/// client), and the few fields routing needs. Everything else in the line is left unparsed.
/// </summary>
public sealed record CliFrame(
    ReadOnlyMemory<byte> Line,
    string? Type,
    string? Subtype = null,
    string? SessionId = null,
    string? UserMessageUuid = null,
    bool IsError = false,
    RateLimitInfo? RateLimit = null,
    ControlResponseInfo? ControlResponse = null,
    CommandLifecycle? Lifecycle = null)
{
    /// <summary>The line as text, decoded on each call.</summary>
    public string Raw => Encoding.UTF8.GetString(Line.Span);

    /// <summary>The line's own <c>uuid</c>, read from the line on each call: routing never needs it, and most lines carry one.</summary>
    public string? Uuid => StreamJsonParser.TopLevelString(Line.Span, "uuid"u8);

    /// <summary>An error result's <c>api_error_status</c> (429: the API's rate limit), read from the line when asked.</summary>
    public int? ApiErrorStatus => IsResult && IsError ? StreamJsonParser.TopLevelInt(Line.Span, "api_error_status"u8) : null;

    public bool IsResult => Type == "result";
    public bool IsInit => Type == "system" && Subtype == "init";

    /// <summary>
    /// What routing read and the line's size, never the line: it is the conversation, and may carry what a tool printed (a
    /// key, a token). A message holding a frame is printed when it goes to dead letters (a session closed mid-turn).
    /// </summary>
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"Type = {Type}, Subtype = {Subtype}, SessionId = {SessionId}, UserMessageUuid = {UserMessageUuid}, IsError = {IsError}, ");
        builder.Append($"RateLimit = {RateLimit}, ControlResponse = {ControlResponse}, Lifecycle = {Lifecycle}, Bytes = {Line.Length}");
        return true;
    }
}

/// <summary>A <c>command_lifecycle</c> frame: what became of the user message <see cref="CommandUuid"/> (<c>queued</c>, <c>started</c>, <c>cancelled</c>, ...).</summary>
public sealed record CommandLifecycle(string? CommandUuid, string? State);

/// <summary>The <c>rate_limit_info</c> of a <c>rate_limit_event</c> frame.</summary>
public sealed record RateLimitInfo(string? Status, DateTimeOffset? ResetsAt, string? LimitType, double? Utilization);

/// <summary>The <c>response</c> of a <c>control_response</c> frame.</summary>
public sealed record ControlResponseInfo(string? Subtype, string? RequestId, string? Error);
