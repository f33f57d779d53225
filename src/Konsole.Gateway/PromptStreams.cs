using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Akka.Actor;
using Konsole.Actors.Prompts;
using Konsole.Actors.Sessions;
using Microsoft.AspNetCore.Http;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Gateway;

/// <summary>
/// A prompt's answer over HTTP: its events as SSE (<c>id</c> = the session's event number, <c>event</c> = the CLI
/// line's type or <c>queued</c>/<c>dropped</c>/<c>error</c>, <c>data</c> = the line verbatim), or with <c>Accept: application/json</c>
/// the <c>result</c> line alone. A prompt refused at once (its first event an error of <see cref="Refusals"/>) is
/// answered with the matching status instead; one taken to run that failed before any output still gets its stream,
/// which ends with that <c>error</c> (as JSON: the error's problem). A client that goes away does not stop the turn:
/// its events stay in the session's buffer.
/// </summary>
public static class PromptStreams
{
    /// <summary>
    /// The errors that refuse a prompt before it was taken to run: as a first event, answered with their status (429,
    /// 503, 409) instead of a stream. Any other error (<c>process_crashed</c>, <c>turn_timeout</c>, <c>interrupted</c>)
    /// ends a prompt that was accepted, so it ends its stream as every accepted prompt's end does.
    /// </summary>
    internal static readonly IReadOnlySet<string> Refusals = new HashSet<string>(StringComparer.Ordinal)
    {
        TurnErrorCodes.QueueFull, TurnErrorCodes.AccountUnavailable, TurnErrorCodes.SessionClosed, TurnErrorCodes.JournalUnavailable,
    };

    /// <param name="quickTurn">A quick turn: its session keeps nothing over a restart, so one cut off by the host stopping does not run.</param>
    public static async Task<IResult> AnswerAsync(HttpContext context, IActorRef gateway, PromptAccepted accepted, bool quickTurn)
    {
        var cutOff = new CutOff(StoppedBeforeStart(accepted.SessionId, quickTurn), Resend: quickTurn);
        SessionEvent first;
        try
        {
            first = await accepted.Events.ReadAsync(context.RequestAborted);
        }
        catch (Exception e) when (NotStarted(e))
        {
            return cutOff.Problem(context);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            gateway.Tell(new Unfollow(accepted.SessionId, accepted.SubscriptionId));
            return e is ChannelClosedException
                ? Problems.ForCode(context, TurnErrorCodes.SessionClosed, $"session {accepted.SessionId} closed before the prompt started")
                : Results.Empty;
        }
        if (first is { Type: "error", EndsPrompt: true } && ErrorOf(first) is var refusal && Refusals.Contains(refusal.Code))
            return Problems.ForCode(context, refusal.Code, refusal.Message, refusal.RetryAfter);
        if (WantsJson(context.Request))
            return await ResultOnlyAsync(context, gateway, accepted, first, cutOff);
        return SseResult.For(context, PromptStream(first, accepted, gateway, cutOff));
    }

    /// <summary>A session's events from its buffer and then live, as SSE, until the session closes, the client leaves or <paramref name="stopping"/>.</summary>
    public static IResult Follow(HttpContext context, IActorRef gateway, EventsFollowed followed, CancellationToken stopping) =>
        SseResult.For(context, Stream(null, followed.Events, () => gateway.Tell(new Unfollow(followed.SessionId, followed.SubscriptionId)), stopping));

    public static SseMessage Item(SessionEvent e) => new(e.Data, e.Type, e.Id);

    /// <summary>
    /// A prompt's events until its last. When the host starts stopping while the prompt still waits in its account's queue
    /// (its session is told so: <see cref="PromptNotStartedException"/>), the stream ends at once with <c>error</c>
    /// <c>account_unavailable</c>: the prompt stays accepted in its session and runs after the restart (its outcome then shows
    /// in the session's events). One that started drains, whether or not it has printed anything yet.
    /// </summary>
    private static async IAsyncEnumerable<SseMessage> PromptStream(SessionEvent first, PromptAccepted accepted, IActorRef gateway,
        CutOff cutOff, [EnumeratorCancellation] CancellationToken aborted = default)
    {
        var notStarted = false;
        await using var items = Stream(first, accepted.Events, () => gateway.Tell(new Unfollow(accepted.SessionId, accepted.SubscriptionId)),
            aborted).GetAsyncEnumerator();
        while (true)
        {
            try
            {
                if (!await items.MoveNextAsync())
                    break;
            }
            catch (Exception e) when (NotStarted(e))
            {
                notStarted = true;
                break;
            }
            yield return items.Current;
        }
        if (notStarted)
            yield return SseResult.Json(new
            {
                code = TurnErrorCodes.AccountUnavailable,
                message = cutOff.Message,
                resend = cutOff.Resend,
            }, "error");
    }

    /// <summary>
    /// How a prompt the host's stop cut off before it started is answered. Its <c>account_unavailable</c> also says whether to
    /// send it again (<c>resend</c>): a session's prompt is kept and runs after the restart (sent again, it would run twice);
    /// a quick turn is not kept. A refusal with no account healthy has no <c>resend</c>: that prompt never runs.
    /// </summary>
    private sealed record CutOff(string Message, bool Resend)
    {
        public IResult Problem(HttpContext context) => Problems.ForCode(context, TurnErrorCodes.AccountUnavailable, Message,
            extensions: new Dictionary<string, object?> { ["resend"] = Resend });
    }

    /// <summary>The prompt's events ended as not started: <c>ReadAsync</c> wraps the channel's exception, <c>WaitToReadAsync</c> does not.</summary>
    private static bool NotStarted(Exception e) => e is PromptNotStartedException || e.InnerException is PromptNotStartedException;

    private static string StoppedBeforeStart(string sessionId, bool quickTurn) => quickTurn
        ? "the host is shutting down before this quick turn started; it was not run: send it again once the host is back"
        : $"the host is shutting down before this prompt started; it runs after the restart (see /api/session/{sessionId}/events)";

    private static async IAsyncEnumerable<SseMessage> Stream(SessionEvent? first, ChannelReader<SessionEvent> events, Action unfollow,
        [EnumeratorCancellation] CancellationToken cancel)
    {
        try
        {
            if (first is not null)
                yield return Item(first);
            await foreach (var e in events.ReadAllAsync(cancel))
                yield return Item(e);
        }
        finally
        {
            unfollow();
        }
    }

    /// <summary>The prompt's result line; when the host starts stopping before the prompt has started, 503 at once (it runs after the restart).</summary>
    private static async Task<IResult> ResultOnlyAsync(HttpContext context, IActorRef gateway, PromptAccepted accepted, SessionEvent first, CutOff cutOff)
    {
        var last = first;
        try
        {
            while (!last.EndsPrompt)
                last = await accepted.Events.ReadAsync(context.RequestAborted);
        }
        catch (Exception e) when (NotStarted(e))
        {
            return cutOff.Problem(context);
        }
        catch (OperationCanceledException)
        {
            gateway.Tell(new Unfollow(accepted.SessionId, accepted.SubscriptionId));
            return Results.Empty;
        }
        catch (ChannelClosedException)
        {
            return Problems.ForCode(context, SessionErrorCodes.Unavailable,
                $"the session stopped before this prompt ended; see /api/session/{accepted.SessionId}/events for its outcome");
        }
        return last.Type == "result" ? Results.Bytes(last.Data, "application/json") : ErrorProblem(context, last);
    }

    private static IResult ErrorProblem(HttpContext context, SessionEvent error)
    {
        var (code, message, retryAfter) = ErrorOf(error);
        return Problems.ForCode(context, code, message, retryAfter);
    }

    private static (string Code, string Message, long? RetryAfter) ErrorOf(SessionEvent error)
    {
        using var data = JsonDocument.Parse(error.Data);
        var root = data.RootElement;
        return (root.GetProperty("code").GetString()!, root.GetProperty("message").GetString()!,
            root.TryGetProperty("retryAfter", out var wait) ? wait.GetInt64() : null);
    }

    private static bool WantsJson(HttpRequest request)
    {
        var accept = request.Headers.Accept.ToString();
        return accept.Contains("application/json", StringComparison.OrdinalIgnoreCase)
            && !accept.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase);
    }
}
