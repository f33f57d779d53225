using System.Text.Json;
using System.Text.RegularExpressions;

namespace Konsole.Testing.FakeApi;

/// <summary>A conversation-turn request (POST /v1/messages) as the fake Messages API received it.</summary>
/// <param name="Index">0-based arrival order among <see cref="FakeMessagesApi.Requests"/>.</param>
/// <param name="Path">Path and query, e.g. <c>/v1/messages?beta=true</c>.</param>
/// <param name="SessionId">The CLI's <c>X-Claude-Code-Session-Id</c> header.</param>
/// <param name="UserTexts">What the user typed, one entry per typed text block of every user message, in
/// order. The CLI's own blocks (<c>&lt;system-reminder&gt;</c>, the <c>&lt;command-name&gt;/clear…</c>
/// record, …) and tool results are left out.</param>
/// <param name="LastUserText">The last entry of <paramref name="UserTexts"/>, or "" when there is none.</param>
/// <param name="SystemText">The top-level <c>system</c> blocks, then the text of <c>role: "system"</c>
/// messages the CLI puts into <c>messages</c>, joined with newlines.</param>
/// <param name="ToolResultText">The text of the <c>tool_result</c> blocks of the last message, joined with newlines,
/// when it is a user message carrying them (the CLI sends a tool's result back); else null.</param>
/// <param name="MessageCount">Length of <c>messages</c>, the CLI's <c>role: "system"</c> entries included.</param>
/// <param name="Body">The raw JSON body.</param>
public sealed partial record RecordedRequest(
    int Index,
    DateTimeOffset ReceivedAt,
    string Path,
    string? Authorization,
    string? ApiKey,
    string? SessionId,
    string? Model,
    bool Stream,
    int MessageCount,
    int ToolCount,
    IReadOnlyList<string> ToolNames,
    string SystemText,
    IReadOnlyList<string> UserTexts,
    string LastUserText,
    string? ToolResultText,
    string Body)
{
    public override string ToString() =>
        $"#{Index} {Path} model={Model} stream={Stream} messages={MessageCount} tools={ToolCount} last=\"{Shorten(LastUserText)}\""
        + (ToolResultText is null ? "" : $" tool_result=\"{Shorten(ToolResultText)}\"");

    internal static string Shorten(string text) =>
        text.Length <= 80 ? text.ReplaceLineEndings(" ") : text[..77].ReplaceLineEndings(" ") + "...";

    /// <summary>
    /// Reads a Messages API body (Index 0 until recorded); throws <see cref="JsonException"/> or
    /// <see cref="InvalidOperationException"/> when it is not JSON of the expected shape.
    /// </summary>
    internal static RecordedRequest Parse(string path, string? authorization, string? apiKey, string? sessionId, string body)
    {
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new JsonException("the request body must be a JSON object");

        var messages = Items(root, "messages");
        var tools = Items(root, "tools");
        var system = new List<string>(Texts(root.TryGetProperty("system", out var s) ? s : default));
        var userTexts = new List<string>();
        foreach (var message in messages)
        {
            var role = message.TryGetProperty("role", out var r) ? r.GetString() : null;
            var content = message.TryGetProperty("content", out var c) ? c : default;
            if (role == "system")
                system.AddRange(Texts(content));
            else if (role == "user")
                userTexts.AddRange(TypedTexts(content));
        }

        return new RecordedRequest(
            0,
            DateTimeOffset.UtcNow,
            path,
            authorization,
            apiKey,
            sessionId,
            root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null,
            root.TryGetProperty("stream", out var st) && st.ValueKind == JsonValueKind.True,
            messages.Count,
            tools.Count,
            tools.Select(t => t.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "").ToList(),
            string.Join("\n", system),
            userTexts,
            userTexts.Count > 0 ? userTexts[^1] : "",
            messages.Count > 0 ? ToolResults(messages[^1]) : null,
            body);
    }

    private static List<JsonElement> Items(JsonElement root, string name) =>
        root.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray().ToList() : [];

    /// <summary>Text of a content value: a plain string, or the <c>text</c> of its text blocks.</summary>
    private static IEnumerable<string> Texts(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => [content.GetString()!],
        JsonValueKind.Array => content.EnumerateArray()
            .Where(b => b.ValueKind == JsonValueKind.Object
                        && b.TryGetProperty("type", out var t) && t.GetString() == "text"
                        && b.TryGetProperty("text", out var x) && x.ValueKind == JsonValueKind.String)
            .Select(b => b.GetProperty("text").GetString()!),
        _ => [],
    };

    private static string? ToolResults(JsonElement message)
    {
        if (!message.TryGetProperty("role", out var role) || role.GetString() != "user"
            || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
            return null;
        var results = content.EnumerateArray()
            .Where(b => b.ValueKind == JsonValueKind.Object && b.TryGetProperty("type", out var t) && t.GetString() == "tool_result")
            .Select(b => string.Join("\n", Texts(b.TryGetProperty("content", out var c) ? c : default)))
            .ToList();
        return results.Count > 0 ? string.Join("\n", results) : null;
    }

    private static IEnumerable<string> TypedTexts(JsonElement content)
    {
        var typed = Texts(content).Select(t => Reminder().Replace(t, "")).Where(t => !WrittenByTheCli(t)).ToList();
        // The CLI merges prompts queued during a turn, or sent after a failed one, into one user message,
        // one block each, and ends every block but the last with "\n".
        for (var i = 0; i < typed.Count - 1; i++)
            if (typed[i].EndsWith('\n'))
                typed[i] = typed[i][..^1];
        return typed.Where(t => t.Length > 0);
    }

    /// <summary>
    /// A block the CLI wrote itself: one or more elements of its own tags and nothing else (<c>&lt;system-reminder&gt;</c>,
    /// <c>&lt;local-command-caveat&gt;</c>, <c>&lt;command-name&gt;</c>/<c>&lt;command-message&gt;</c>/<c>&lt;command-args&gt;</c>,
    /// <c>&lt;local-command-stdout&gt;</c>, ...). A user's prompt in tags of its own (<c>&lt;question&gt;…</c>) is the user's.
    /// Scanned element by element, so its cost grows with the text, never with how its elements could be grouped.
    /// </summary>
    private static bool WrittenByTheCli(string text)
    {
        var rest = text.AsSpan().TrimStart();
        if (rest.IsEmpty)
            return false;
        while (!rest.IsEmpty)
        {
            var openEnd = rest.IndexOf('>');
            if (rest[0] != '<' || openEnd < 0)
                return false;
            var name = rest[1..openEnd];
            if (name.IndexOfAny(" \t\r\n") is >= 0 and var space)
                name = name[..space];
            if (!CliTag().IsMatch(name))
                return false;
            var close = $"</{name}>";
            var end = rest[(openEnd + 1)..].IndexOf(close, StringComparison.Ordinal);
            if (end < 0)
                return false;
            rest = rest[(openEnd + 1 + end + close.Length)..].TrimStart();
        }
        return true;
    }

    [GeneratedRegex("^(?:system-reminder|(?:local-command|command|bash)-[a-z-]+)$")]
    private static partial Regex CliTag();

    [GeneratedRegex(@"<system-reminder>.*?</system-reminder>\s*", RegexOptions.Singleline)]
    private static partial Regex Reminder();
}

/// <summary>Anything the CLI asked the fake other than a conversation turn (HEAD /api/hello, count_tokens, …).</summary>
public sealed record SideRequest(DateTimeOffset ReceivedAt, string Method, string Path, string? Authorization, string Body)
{
    public override string ToString() => $"{Method} {Path}";
}
