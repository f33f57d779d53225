using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Konsole.Gateway;

/// <summary>
/// Reads request bodies without trusting them: any malformed, oversized or mistyped body becomes a 4xx problem (and a body
/// its client gave up on, an empty answer to no one).
/// </summary>
public static class RequestBodies
{
    /// <summary>Bodies other than prompts (session creation, role switch) are small.</summary>
    private const long SmallBodyLimit = 64 * 1024;

    /// <summary>
    /// The <c>prompt</c> of a <c>{ "prompt": "text" }</c> body: a non-blank string of at most <paramref name="maxPromptBytes"/>
    /// UTF-8 bytes (413 beyond it); or the problem to answer.
    /// </summary>
    public static async Task<(string? Prompt, IResult? Problem)> ReadPromptAsync(HttpContext context, long maxPromptBytes)
    {
        // JSON escapes can take six bytes per character of the prompt.
        var (body, problem) = await ReadObjectAsync(context, maxPromptBytes * 6 + SmallBodyLimit, required: true);
        if (problem is not null)
            return (null, problem);
        using (body)
        {
            if (!body!.RootElement.TryGetProperty("prompt", out var prompt))
                return (null, BadRequest(context, "missing_prompt", "the body needs a \"prompt\": { \"prompt\": \"text\" }"));
            if (prompt.ValueKind != JsonValueKind.String)
                return (null, BadRequest(context, "invalid_prompt", $"\"prompt\" must be a string, not {Kind(prompt)}"));
            if (TextOf(prompt) is not { } text)
                return (null, BadRequest(context, "invalid_prompt", "\"prompt\" is not valid text (invalid UTF-8, or a lone surrogate escape)"));
            if (string.IsNullOrWhiteSpace(text))
                return (null, BadRequest(context, "empty_prompt", "\"prompt\" must not be empty"));
            var bytes = Encoding.UTF8.GetByteCount(text);
            if (bytes > maxPromptBytes)
                return (null, TooLarge(context, $"the prompt has {bytes:N0} bytes; at most {maxPromptBytes:N0} are taken (konsole.gateway.max-prompt-bytes)"));
            return (text, null);
        }
    }

    /// <summary>A small JSON object body; with <paramref name="required"/> false an empty body gives (null, null).</summary>
    public static Task<(JsonDocument? Body, IResult? Problem)> ReadSmallObjectAsync(HttpContext context, bool required) =>
        ReadObjectAsync(context, SmallBodyLimit, required);

    /// <summary>An optional string property of a body; a value of another type is a problem.</summary>
    public static (string? Value, IResult? Problem) OptionalString(HttpContext context, JsonDocument? body, string name)
    {
        if (body is null || !body.RootElement.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return (null, null);
        if (value.ValueKind != JsonValueKind.String)
            return (null, BadRequest(context, $"invalid_{name}", $"\"{name}\" must be a string, not {Kind(value)}"));
        return TextOf(value) is { } text
            ? (text, null)
            : (null, BadRequest(context, $"invalid_{name}", $"\"{name}\" is not valid text (invalid UTF-8, or a lone surrogate escape)"));
    }

    /// <summary>A problem when the body has a property other than <paramref name="name"/>, or that one as null.</summary>
    public static IResult? OnlyProperty(HttpContext context, JsonDocument? body, string name)
    {
        if (body?.RootElement.EnumerateObject().Select(p => p.Name).FirstOrDefault(other => other != name) is { } other)
            return BadRequest(context, "unknown_field", $"unknown field \"{other}\": the body takes only \"{name}\"");
        return body is not null && body.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Null
            ? BadRequest(context, $"invalid_{name}", $"\"{name}\" must be a string, not null")
            : null;
    }

    /// <summary>A JSON string's text, or null when it cannot be text: the parser leaves invalid UTF-8 and lone surrogate escapes in strings to this.</summary>
    private static string? TextOf(JsonElement value)
    {
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public static IResult BadRequest(HttpContext context, string code, string detail) =>
        Problems.Problem(context, StatusCodes.Status400BadRequest, code, detail);

    private static async Task<(JsonDocument? Body, IResult? Problem)> ReadObjectAsync(HttpContext context, long limit, bool required)
    {
        if (context.Request.ContentLength > limit)
            return (null, TooLarge(context, $"the body has {context.Request.ContentLength:N0} bytes; at most {limit:N0} are taken"));
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = limit;

        byte[] raw;
        // A body still arriving when the host begins to stop is not waited for: sent slowly, it would hold the host's stop (and
        // every CLI's graceful one) for its whole shutdown timeout.
        var stopping = GatewayEndpoints.Stopping(context);
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        try
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, reading.Token);
            raw = buffer.ToArray();
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            return (null, GatewayEndpoints.ShuttingDown(context));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(context, $"the body is larger than the {limit:N0} bytes taken"));
        }
        catch (BadHttpRequestException e)
        {
            return (null, BadRequest(context, "unreadable_body", e.Message));
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client left (it reset the connection, or the request was aborted) while its body was on its way: there is
            // no one to answer, and nothing failed here. Aborting the request says so to Kestrel too, which would otherwise
            // try to read the rest of the body from a reader left mid-read (an error in its log).
            context.Abort();
            return (null, Results.Empty);
        }

        if (raw.AsSpan().Trim(" \t\r\n"u8).IsEmpty)
            return required ? (null, BadRequest(context, "missing_body", "a JSON object body is required")) : (null, null);
        JsonDocument body;
        try
        {
            body = JsonDocument.Parse(raw);
        }
        catch (JsonException e)
        {
            return (null, BadRequest(context, "invalid_json", $"the body is not valid JSON: {e.Message}"));
        }
        if (body.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = Kind(body.RootElement);
            body.Dispose();
            return (null, BadRequest(context, "invalid_body", $"the body must be a JSON object, not {kind}"));
        }
        if (!NamesAreText(body.RootElement))
        {
            // Looking a property up decodes the names it passes, and a name that cannot be decoded would throw there (a 500).
            body.Dispose();
            return (null, BadRequest(context, "invalid_json", "a property name of the body is not valid text (invalid UTF-8, or a lone surrogate escape)"));
        }
        return (body, null);
    }

    private static bool NamesAreText(JsonElement body)
    {
        try
        {
            foreach (var property in body.EnumerateObject())
                _ = property.Name;
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static IResult TooLarge(HttpContext context, string detail) =>
        Problems.Problem(context, StatusCodes.Status413PayloadTooLarge, "payload_too_large", detail);

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "a string",
    };
}
