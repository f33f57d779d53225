using Konsole.Actors.Prompts;
using Konsole.Actors.Sessions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace Konsole.Gateway;

/// <summary>
/// Every error the gateway answers: <c>application/problem+json</c> (RFC 7807) with <c>type</c>
/// <c>urn:konsole:problem:&lt;code&gt;</c>, <c>title</c>, <c>status</c>, <c>detail</c>, and the <c>code</c> itself.
/// </summary>
public static class Problems
{
    /// <summary>What a client that is told to wait (429, 503) should wait, in seconds.</summary>
    public const int RetryAfterSeconds = 5;

    /// <param name="retryAfter">Seconds for Retry-After on a 429 or 503 (default <see cref="RetryAfterSeconds"/>).</param>
    /// <param name="extensions">Members of the problem besides <c>code</c>.</param>
    public static IResult Problem(HttpContext context, int status, string code, string detail, long? retryAfter = null,
        IReadOnlyDictionary<string, object?>? extensions = null)
    {
        if (status is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
            context.Response.Headers.RetryAfter = (retryAfter ?? RetryAfterSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var members = extensions is null ? new Dictionary<string, object?>() : new Dictionary<string, object?>(extensions);
        members["code"] = code;
        return Results.Problem(
            detail: detail,
            statusCode: status,
            title: TitleOf(code),
            type: $"urn:konsole:problem:{code}",
            instance: context.Request.Path,
            extensions: members);
    }

    /// <summary>The problem for a status the endpoints did not answer themselves (an unknown path, a method a path does not take).</summary>
    public static IResult ForStatus(HttpContext context)
    {
        var status = context.Response.StatusCode;
        var request = $"{context.Request.Method} {context.Request.Path}";
        return status switch
        {
            StatusCodes.Status404NotFound => Problem(context, status, "not_found", $"{request}: no such endpoint"),
            StatusCodes.Status405MethodNotAllowed => Problem(context, status, "method_not_allowed", $"{request}: this path does not take {context.Request.Method}"),
            _ => Problem(context, status, ReasonPhrases.GetReasonPhrase(status).ToLowerInvariant().Replace(' ', '_') is { Length: > 0 } code ? code : "error",
                $"{request}: {ReasonPhrases.GetReasonPhrase(status)}"),
        };
    }

    /// <summary>The problem for an error code of a prompt or a session (<see cref="TurnErrorCodes"/>, <see cref="SessionErrorCodes"/>).</summary>
    public static IResult ForCode(HttpContext context, string code, string detail, long? retryAfter = null,
        IReadOnlyDictionary<string, object?>? extensions = null) =>
        Problem(context, StatusOf(code), code, detail, retryAfter, extensions);

    public static int StatusOf(string code) => code switch
    {
        TurnErrorCodes.QueueFull or SessionErrorCodes.TooMany => StatusCodes.Status429TooManyRequests,
        TurnErrorCodes.AccountUnavailable or TurnErrorCodes.JournalUnavailable or SessionErrorCodes.Unavailable => StatusCodes.Status503ServiceUnavailable,
        TurnErrorCodes.ProcessCrashed or TurnErrorCodes.ResultTooLarge => StatusCodes.Status502BadGateway,
        TurnErrorCodes.TurnTimeout => StatusCodes.Status504GatewayTimeout,
        TurnErrorCodes.Interrupted or TurnErrorCodes.SessionClosed or SessionErrorCodes.Exists or SessionErrorCodes.TypeMismatch => StatusCodes.Status409Conflict,
        SessionErrorCodes.NotFound or "account_not_found" => StatusCodes.Status404NotFound,
        TurnErrorCodes.ModelUnavailable => StatusCodes.Status422UnprocessableEntity,
        _ => StatusCodes.Status400BadRequest,
    };

    private static string TitleOf(string code) => code switch
    {
        TurnErrorCodes.QueueFull => "The account's queue is full",
        TurnErrorCodes.AccountUnavailable => "No account can take it now",
        TurnErrorCodes.ProcessCrashed => "The CLI process crashed during the turn",
        TurnErrorCodes.TurnTimeout => "The turn timed out",
        TurnErrorCodes.Interrupted => "The turn was interrupted",
        TurnErrorCodes.SessionClosed => "The session is closed",
        TurnErrorCodes.JournalUnavailable => "The session's journal failed",
        TurnErrorCodes.ModelUnavailable => "The CLI refused the session's model",
        TurnErrorCodes.ResultTooLarge => "The turn's result was too large to keep",
        SessionErrorCodes.Unavailable => "The session is restarting",
        SessionErrorCodes.NotFound => "No such session",
        SessionErrorCodes.Exists => "The session exists already",
        SessionErrorCodes.TypeMismatch => "The session is of another type",
        SessionErrorCodes.InvalidId => "Invalid session id",
        SessionErrorCodes.TooMany => "Too many sessions are open",
        _ => code.Replace('_', ' ') is var words ? char.ToUpperInvariant(words[0]) + words[1..] : code,
    };
}
