using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Konsole.Testing.FakeApi;

/// <summary>The fake's answers to a conversation turn, shaped as the real Messages API shapes them.</summary>
internal static partial class FakeReplies
{
    private const int InputTokens = 5;

    public static async Task AnswerAsync(HttpResponse response, RecordedRequest request, int number, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        response.Headers["request-id"] = $"req_fake_{number:D6}";
        if (Api429().IsMatch(request.LastUserText))
        {
            await RateLimitedAsync(response, now, ct);
            return;
        }

        AllowedHeaders(response.Headers, now);
        var id = $"msg_fake_{number:D6}";
        var model = request.Model ?? "claude-opus-5-5";
        if (request.ToolResultText is null && ApiBash().Match(request.LastUserText) is { Success: true } bash)
        {
            var input = new { command = bash.Groups[1].Value, description = "Run the command the prompt asked for" };
            await ToolUseAsync(response, request.Stream, id, model, $"toolu_fake_{number:D6}", "Bash", input, ct);
            return;
        }

        var answer = request.ToolResultText is { } result ? "done: " + result : "echo: " + request.LastUserText;
        var slow = ApiSlow().Match(request.LastUserText);
        var (pieces, delay) = slow.Success
            ? (Split(answer, Math.Max(1, int.Parse(slow.Groups[1].Value, CultureInfo.InvariantCulture))),
               TimeSpan.FromMilliseconds(int.Parse(slow.Groups[2].Value, CultureInfo.InvariantCulture)))
            : (Words().Matches(answer).Select(m => m.Value).ToList(), TimeSpan.Zero);

        if (!request.Stream)
        {
            await Task.Delay(delay * (pieces.Count - 1), ct);
            await MessageAsync(response, id, model, new { type = "text", text = answer }, "end_turn", pieces.Count, ct);
            return;
        }

        await MessageStartAsync(response, id, model, ct);
        await EventAsync(response, "content_block_start", new { type = "content_block_start", index = 0, content_block = new { type = "text", text = "" } }, ct);
        await EventAsync(response, "ping", new { type = "ping" }, ct);
        for (var i = 0; i < pieces.Count; i++)
        {
            if (i > 0 && delay > TimeSpan.Zero)
                await Task.Delay(delay, ct);
            await EventAsync(response, "content_block_delta", new { type = "content_block_delta", index = 0, delta = new { type = "text_delta", text = pieces[i] } }, ct);
        }
        await EventAsync(response, "content_block_stop", new { type = "content_block_stop", index = 0 }, ct);
        await MessageEndAsync(response, "end_turn", pieces.Count, ct);
    }

    /// <summary>A call of the tool <paramref name="name"/>; streamed, its input comes in pieces of JSON, as the real API sends it.</summary>
    private static async Task ToolUseAsync(HttpResponse response, bool stream, string id, string model, string toolUseId, string name, object input, CancellationToken ct)
    {
        if (!stream)
        {
            await MessageAsync(response, id, model, new { type = "tool_use", id = toolUseId, name, input }, "tool_use", 1, ct);
            return;
        }

        var pieces = Split(JsonSerializer.Serialize(input), 3);
        await MessageStartAsync(response, id, model, ct);
        await EventAsync(response, "content_block_start", new
        {
            type = "content_block_start", index = 0, content_block = new { type = "tool_use", id = toolUseId, name, input = new { } },
        }, ct);
        await EventAsync(response, "ping", new { type = "ping" }, ct);
        foreach (var piece in pieces)
            await EventAsync(response, "content_block_delta", new { type = "content_block_delta", index = 0, delta = new { type = "input_json_delta", partial_json = piece } }, ct);
        await EventAsync(response, "content_block_stop", new { type = "content_block_stop", index = 0 }, ct);
        await MessageEndAsync(response, "tool_use", pieces.Count, ct);
    }

    private static Task MessageAsync(HttpResponse response, string id, string model, object content, string stopReason, int outputTokens, CancellationToken ct) =>
        response.WriteAsJsonAsync(new
        {
            id, type = "message", role = "assistant", model,
            content = new[] { content },
            stop_reason = stopReason, stop_sequence = (string?)null,
            usage = new { input_tokens = InputTokens, cache_creation_input_tokens = 0, cache_read_input_tokens = 0, output_tokens = outputTokens },
        }, ct);

    private static async Task MessageStartAsync(HttpResponse response, string id, string model, CancellationToken ct)
    {
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        await EventAsync(response, "message_start", new
        {
            type = "message_start",
            message = new
            {
                id, type = "message", role = "assistant", model, content = Array.Empty<object>(),
                stop_reason = (string?)null, stop_sequence = (string?)null,
                usage = new { input_tokens = InputTokens, cache_creation_input_tokens = 0, cache_read_input_tokens = 0, output_tokens = 1 },
            },
        }, ct);
    }

    private static async Task MessageEndAsync(HttpResponse response, string stopReason, int outputTokens, CancellationToken ct)
    {
        await EventAsync(response, "message_delta", new
        {
            type = "message_delta",
            delta = new { stop_reason = stopReason, stop_sequence = (string?)null },
            usage = new { output_tokens = outputTokens },
        }, ct);
        await EventAsync(response, "message_stop", new { type = "message_stop" }, ct);
    }

    /// <summary>What an OAuth (subscription) account gets: the CLI turns it into <c>rate_limit_event</c> status allowed.</summary>
    private static void AllowedHeaders(IHeaderDictionary headers, DateTimeOffset now)
    {
        var fiveHours = now.AddHours(5).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        headers["anthropic-ratelimit-unified-status"] = "allowed";
        headers["anthropic-ratelimit-unified-reset"] = fiveHours;
        headers["anthropic-ratelimit-unified-representative-claim"] = "five_hour";
        headers["anthropic-ratelimit-unified-5h-status"] = "allowed";
        headers["anthropic-ratelimit-unified-5h-reset"] = fiveHours;
        headers["anthropic-ratelimit-unified-5h-utilization"] = "0.01";
        headers["anthropic-ratelimit-unified-7d-status"] = "allowed";
        headers["anthropic-ratelimit-unified-7d-reset"] = now.AddDays(7).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        headers["anthropic-ratelimit-unified-7d-utilization"] = "0.01";
    }

    private static Task RateLimitedAsync(HttpResponse response, DateTimeOffset now, CancellationToken ct)
    {
        response.StatusCode = 429;
        response.Headers["anthropic-ratelimit-unified-status"] = "rejected";
        response.Headers["anthropic-ratelimit-unified-reset"] = now.AddHours(1).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        // Without these two the CLI retries the 429 with backoff (system/api_retry frames) for minutes.
        response.Headers.RetryAfter = "3600";
        response.Headers["x-should-retry"] = "false";
        return response.WriteAsJsonAsync(new
        {
            type = "error",
            error = new { type = "rate_limit_error", message = "This request would exceed your account's rate limit. Please try again later." },
        }, ct);
    }

    private static async Task EventAsync(HttpResponse response, string name, object data, CancellationToken ct)
    {
        await response.WriteAsync($"event: {name}\ndata: {JsonSerializer.Serialize(data)}\n\n", ct);
        await response.Body.FlushAsync(ct);
    }

    /// <summary>N slices of <paramref name="text"/>, padded with dots to at least N characters.</summary>
    private static List<string> Split(string text, int n)
    {
        text = text.PadRight(n, '.');
        int At(int i) => (int)((long)i * text.Length / n);
        return Enumerable.Range(0, n).Select(i => text[At(i)..At(i + 1)]).ToList();
    }

    [GeneratedRegex(@"\S+\s*")]
    private static partial Regex Words();

    [GeneratedRegex(@"\[\[api-slow:(\d{1,6}):(\d{1,6})\]\]")]
    private static partial Regex ApiSlow();

    [GeneratedRegex(@"\[\[api-bash:(.+?)\]\]", RegexOptions.Singleline)]
    private static partial Regex ApiBash();

    [GeneratedRegex(@"\[\[api-429\]\]")]
    private static partial Regex Api429();
}
