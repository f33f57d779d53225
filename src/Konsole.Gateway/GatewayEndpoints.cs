using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Hosting;
using Konsole.Actors;
using Konsole.Actors.Accounts;
using Konsole.Actors.Configuration;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Konsole.Actors.Routing.RoleRouterProtocol;
using static Konsole.Actors.Sessions.SessionProtocol;
using static Konsole.Gateway.GatewayProtocol;

namespace Konsole.Gateway;

/// <summary>The endpoints of the v1 HTTP contract. Each asks the <see cref="GatewayActor"/>, with a timeout and the request's cancellation.</summary>
public static partial class GatewayEndpoints
{
    /// <summary>
    /// How long an endpoint waits for the actors to answer; beyond it: 503, or 504 for what may still apply (a prompt, see
    /// <see cref="SubmitUnanswered"/>; a role change). A session created too late is closed again (see <see cref="GiveUp"/>).
    /// </summary>
    public static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The code of a prompt submission the actors did not answer in time: its outcome is unknown.</summary>
    public const string GatewayTimeout = "gateway_timeout";

    /// <summary>The code of the last event of an <c>/api/events</c> stream that fell too far behind.</summary>
    public const string TooSlow = "too_slow";

    /// <summary>The rate-limiter policy of every endpoint that answers with a stream (konsole.gateway.max-streams).</summary>
    public const string StreamsPolicy = "streams";

    public static void MapKonsoleGateway(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }));
        app.MapGet("/readyz", async (HttpContext context, IRequiredActor<GatewayActor> gateway) =>
        {
            if (Stopping(context).IsCancellationRequested) // prompts get 503 from now on: a load balancer must look elsewhere
                return ShuttingDown(context);
            var answers = await Task.WhenAll(
                AskAsync<Readiness>(context, gateway, RoleRouterProtocol.GetReadiness.Instance),
                AskAsync<Readiness>(context, gateway, SessionProtocol.GetReadiness.Instance));
            var waiting = answers.Select(a => a.Reply is { } readiness ? readiness.Waiting : "the actor system did not answer").OfType<string>().ToList();
            return waiting.Count == 0
                ? Results.Ok(new { status = "ready" })
                : Problems.Problem(context, StatusCodes.Status503ServiceUnavailable, "not_ready", string.Join("; ", waiting));
        });

        app.MapGet("/api/accounts", AccountsAsync);
        app.MapGet("/api/accounts/status", async (HttpContext context, IRequiredActor<GatewayActor> gateway) =>
            await AskAsync<RoleStatus>(context, gateway, GetRoleStatus.Instance) is (var status, null)
                ? Results.Ok(ApiViews.RoleStatus(status!))
                : Unanswered(context));
        app.MapPost("/api/accounts/switch", SwitchAsync);
        app.MapPost("/api/accounts/{id}/refresh", async (HttpContext context, IRequiredActor<GatewayActor> gateway, string id) =>
            await AskAsync<object>(context, gateway, new RefreshAccount(id)) switch
            {
                (AccountProtocol.RefreshScheduled scheduled, _) => Results.Accepted(value: new { accountId = scheduled.AccountId, status = "scheduled" }),
                (AccountProtocol.RefreshRefused refused, _) => Problems.Problem(context,
                    refused.Code switch { "account_not_found" => 404, "shutting_down" or TurnErrorCodes.AccountUnavailable => 503, _ => 409 }, refused.Code, refused.Reason),
                _ => Unanswered(context),
            });
        app.MapGet("/hot/status", async (HttpContext context, IRequiredActor<GatewayActor> gateway) =>
            await AskAsync<AccountsView>(context, gateway, GetAccounts.Instance) is (var view, null)
                ? Results.Ok(ApiViews.HotStatus(view!))
                : Unanswered(context));

        app.MapPost("/sessions/{id}/hot-prompt", (HttpContext context, IRequiredActor<GatewayActor> gateway, KonsoleSettings settings, string id) =>
            PromptAsync(context, gateway, settings, id, text => new SubmitPrompt(id, text, CreateAs: SessionType.Full))).RequireRateLimiting(StreamsPolicy);
        app.MapPost("/api/quick-turn", (HttpContext context, IRequiredActor<GatewayActor> gateway, KonsoleSettings settings) =>
            PromptAsync(context, gateway, settings, sessionId: null, text => new SubmitQuickTurn(text))).RequireRateLimiting(StreamsPolicy);

        app.MapPost("/api/session", CreateSessionAsync);
        app.MapPost("/api/session/{id}/prompt", (HttpContext context, IRequiredActor<GatewayActor> gateway, KonsoleSettings settings, string id) =>
            PromptAsync(context, gateway, settings, id, text => new SubmitPrompt(id, text))).RequireRateLimiting(StreamsPolicy);
        app.MapPost("/api/session/{id}/interrupt", async (HttpContext context, IRequiredActor<GatewayActor> gateway, string id) =>
            await AskAsync<object>(context, gateway, new InterruptSession(id)) switch
            {
                (SessionInterrupted done, _) => Results.Accepted(value: new { sessionId = done.SessionId, interrupted = done.Prompts }),
                var (reply, problem) => RefusedAbout(context, reply, problem),
            });
        app.MapGet("/api/session/{id}", async (HttpContext context, IRequiredActor<GatewayActor> gateway, string id) =>
            await AskAsync<object>(context, gateway, new GetSession(id)) switch
            {
                (SessionInfo info, _) => Results.Ok(ApiViews.Session(info)),
                var (reply, problem) => RefusedAbout(context, reply, problem),
            });
        app.MapGet("/api/session/{id}/events", FollowSessionAsync).RequireRateLimiting(StreamsPolicy);
        app.MapDelete("/api/session/{id}", async (HttpContext context, IRequiredActor<GatewayActor> gateway, string id) =>
            await AskAsync<object>(context, gateway, new CloseSession(id)) switch
            {
                (SessionClosed, _) => Results.NoContent(),
                var (reply, problem) => RefusedAbout(context, reply, problem),
            });

        app.MapGet("/api/events", SystemEventsAsync).RequireRateLimiting(StreamsPolicy);
    }

    private static async Task<IResult> AccountsAsync(HttpContext context, IRequiredActor<GatewayActor> gateway, KonsoleSettings settings) =>
        await AskAsync<AccountsView>(context, gateway, GetAccounts.Instance) is (var view, null)
            ? Results.Ok(ApiViews.Accounts(view!, settings.Accounts.ToDictionary(a => a.Id, a => a.Simulated), DateTimeOffset.UtcNow))
            : Unanswered(context);

    private static async Task<IResult> SwitchAsync(HttpContext context, IRequiredActor<GatewayActor> gateway, KonsoleSettings settings)
    {
        var (body, problem) = await RequestBodies.ReadSmallObjectAsync(context, required: false);
        if (problem is not null)
            return problem;
        using (body)
        {
            var (dashboard, invalid) = RequestBodies.OptionalString(context, body, "dashboard");
            if ((invalid ?? RequestBodies.OnlyProperty(context, body, "dashboard")) is { } refused)
                return refused; // a misspelt "dashboard" would otherwise swap the roles, maybe the other way
            object change = dashboard is null ? SwapRoles.Instance : new AssignDashboard(dashboard);
            switch (await AskAsync<object>(context, gateway, change, timedOut: () => RoleChangeUnanswered(context)))
            {
                case (RoleChangeRejected rejected, _):
                    return Problems.Problem(context, StatusCodes.Status404NotFound, "account_not_found", rejected.Reason);
                case (RolesChanged, _):
                    return await AccountsAsync(context, gateway, settings);
                default:
                    return Unanswered(context);
            }
        }
    }

    private static async Task<IResult> CreateSessionAsync(HttpContext context, IRequiredActor<GatewayActor> gateway)
    {
        var (body, problem) = await RequestBodies.ReadSmallObjectAsync(context, required: true);
        if (problem is not null)
            return problem;
        using (body)
        {
            var (type, badType) = RequestBodies.OptionalString(context, body, "type");
            var (provider, badProvider) = RequestBodies.OptionalString(context, body, "provider");
            var (model, badModel) = RequestBodies.OptionalString(context, body, "model");
            if ((badType ?? badProvider ?? badModel) is { } invalid)
                return invalid;
            SessionType? sessionType = type switch { "full" => SessionType.Full, "chat" => SessionType.Chat, "worker" => SessionType.Worker, _ => null };
            if (sessionType is null)
                return RequestBodies.BadRequest(context, "invalid_type", $"\"type\" must be \"full\", \"chat\" or \"worker\"{(type is null ? "" : $", not \"{type}\"")}");
            if (provider is not null && provider != "claude")
                return RequestBodies.BadRequest(context, "unsupported_provider", $"\"provider\" can only be \"claude\", not \"{provider}\"");
            if (model is not null && !ModelName().IsMatch(model))
                return RequestBodies.BadRequest(context, "invalid_model",
                    "\"model\" is a model name or alias such as \"sonnet\" or \"claude-sonnet-4-5\": 1 to 200 letters, digits and . _ : [ ] @ / -");
            return await AskAsync<object>(context, gateway, new CreateSession(sessionType.Value, Model: model)) switch
            {
                (SessionInfo info, _) => Results.Created($"/api/session/{Uri.EscapeDataString(info.SessionId)}", new { sessionId = info.SessionId }),
                var (reply, failure) => Refused(context, reply, failure),
            };
        }
    }

    /// <param name="sessionId">The session the prompt goes to; null for a quick turn (a session of its own, named by no one).</param>
    private static async Task<IResult> PromptAsync(HttpContext context, IRequiredActor<GatewayActor> gateway, KonsoleSettings settings,
        string? sessionId, Func<string, object> submit)
    {
        if (Stopping(context).IsCancellationRequested)
            return ShuttingDown(context);
        var (text, problem) = await RequestBodies.ReadPromptAsync(context, settings.Gateway.MaxPromptBytes);
        if (problem is not null)
            return problem;
        return await AskAsync<object>(context, gateway, submit(text!), timedOut: () => SubmitUnanswered(context, sessionId)) switch
        {
            (PromptAccepted accepted, _) => await PromptStreams.AnswerAsync(context, gateway.ActorRef, accepted, quickTurn: sessionId is null),
            var (reply, failure) => Refused(context, reply, failure),
        };
    }

    private static async Task<IResult> FollowSessionAsync(HttpContext context, IRequiredActor<GatewayActor> gateway, string id)
    {
        // An empty Last-Event-ID (a client that has seen no event yet) is no header at all.
        var after = context.Request.Headers["Last-Event-ID"].FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))
            ?? context.Request.Query["after"].FirstOrDefault() ?? "0";
        if (!long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var afterId))
            return RequestBodies.BadRequest(context, "invalid_event_id", $"Last-Event-ID or ?after= must be an event number, not '{after}'");
        switch (await AskAsync<object>(context, gateway, new FollowEvents(id, afterId)))
        {
            case (EventsFollowed followed, _):
                // Events before this one are no longer buffered: a client that asked for older ones can tell.
                context.Response.Headers["Konsole-First-Event-Id"] = followed.FirstAvailable.ToString(CultureInfo.InvariantCulture);
                return PromptStreams.Follow(context, gateway.ActorRef, followed, Stopping(context));
            case var (reply, problem):
                return RefusedAbout(context, reply, problem);
        }
    }

    private static async Task<IResult> SystemEventsAsync(HttpContext context, IRequiredActor<GatewayActor> gateway) =>
        await AskAsync<SystemEventsFollowed>(context, gateway, FollowSystemEvents.Instance) is (var followed, null)
            ? SseResult.For(context, SystemEvents(followed!, gateway.ActorRef, Stopping(context)))
            : Unanswered(context);

    /// <summary>
    /// The system's events until the host stops or the client leaves. A client that fell too far behind gets what was
    /// kept for it and then a last event, <c>error</c> <c>too_slow</c>, and its stream ends: it may follow again.
    /// </summary>
    private static async IAsyncEnumerable<SseMessage> SystemEvents(SystemEventsFollowed followed, IActorRef gateway,
        [EnumeratorCancellation] CancellationToken cancel)
    {
        var id = 0L;
        var fellBehind = false;
        try
        {
            while (true)
            {
                try
                {
                    if (!await followed.Events.WaitToReadAsync(cancel))
                        break;
                }
                catch (SystemEventsActor.FellBehindException)
                {
                    fellBehind = true;
                    break;
                }
                while (followed.Events.TryRead(out var domainEvent))
                {
                    if (ApiViews.SystemEvent(domainEvent) is var (kind, body))
                        yield return SseResult.Json(body, kind, ++id);
                }
            }
        }
        finally
        {
            gateway.Tell(new UnfollowSystemEvents(followed.SubscriptionId));
        }
        if (fellBehind)
            yield return SseResult.Json(new
            {
                kind = "error",
                code = TooSlow,
                message = $"this stream fell {SystemEventsActor.Capacity:N0} events behind (the client reads too slowly) and ends here; " +
                    "follow /api/events again (events published meanwhile are not replayed)",
            }, "error", ++id);
    }

    /// <summary>
    /// Cancelled when the host starts stopping: streams that follow (a session's events, the system's) end then, so the
    /// server can stop once the running turns' streams have ended.
    /// </summary>
    internal static CancellationToken Stopping(HttpContext context) =>
        context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;

    /// <summary>What a request the host no longer takes is answered, once it begins to stop.</summary>
    internal static IResult ShuttingDown(HttpContext context) =>
        Problems.Problem(context, StatusCodes.Status503ServiceUnavailable, "shutting_down", "the host is shutting down; try again once it is back");

    /// <summary>
    /// The actors' answer, or (null, a problem) when they did not answer in time: <paramref name="timedOut"/>'s, or by
    /// default a 503.
    /// </summary>
    private static Task<(T? Reply, IResult? Problem)> AskAsync<T>(HttpContext context, IRequiredActor<GatewayActor> gateway, object message,
        Func<IResult>? timedOut = null)
        where T : class =>
        AskAsync<T>(context, gateway.ActorRef, message, AskTimeout, timedOut);

    /// <summary>Asks <paramref name="gateway"/>, waiting up to <paramref name="wait"/> and no longer than the client stays.</summary>
    internal static async Task<(T? Reply, IResult? Problem)> AskAsync<T>(HttpContext context, IActorRef gateway, object message, TimeSpan wait,
        Func<IResult>? timedOut = null)
        where T : class
    {
        // The ask itself outlives the wait: a reply that comes after the client left or the wait timed out is still seen,
        // and what it opened for this request (a follower, a prompt's stream) is given up instead of left behind.
        var ask = gateway.Ask<object>(message, AbandonedAfter);
        try
        {
            var reply = await ask.WaitAsync(wait, context.RequestAborted);
            return reply is T answer ? (answer, null) : (null, Unanswered(context));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            _ = ask.ContinueWith(late => GiveUp(gateway, message, late), TaskScheduler.Default);
            return e is TimeoutException ? (null, timedOut?.Invoke() ?? Unanswered(context)) : (null, Results.Empty); // or the client left
        }
    }

    /// <summary>How long an ask whose answer nobody waits for any more is kept, to give up what that answer opened.</summary>
    private static readonly TimeSpan AbandonedAfter = TimeSpan.FromMinutes(5);

    private static void GiveUp(IActorRef gateway, object asked, Task<object> late)
    {
        if (!late.IsCompletedSuccessfully)
        {
            _ = late.Exception; // no answer at all: nothing was opened
            return;
        }
        switch (late.Result)
        {
            case EventsFollowed followed:
                gateway.Tell(new Unfollow(followed.SessionId, followed.SubscriptionId));
                break;
            case PromptAccepted accepted: // the prompt runs on; its events stay in the session's buffer
                gateway.Tell(new Unfollow(accepted.SessionId, accepted.SubscriptionId));
                break;
            case SystemEventsFollowed system:
                gateway.Tell(new UnfollowSystemEvents(system.SubscriptionId));
                break;
            case SessionInfo created when asked is CreateSession: // its client was told to try again: nobody has its id
                gateway.Tell(new CloseSession(created.SessionId));
                break;
        }
    }

    /// <summary>
    /// <see cref="Refused"/>, for a request about a session as it is: one closed before is no more, so looking it up, following
    /// its events, interrupting or deleting it again is a 404, whose code says it was closed. (A prompt for it stays a 409: a UI
    /// session's id, which a hot prompt would otherwise open, is not free again.)
    /// </summary>
    private static IResult RefusedAbout(HttpContext context, object? reply, IResult? problem) =>
        reply is SessionRejected { Code: SessionErrorCodes.Closed } closed
            ? Problems.Problem(context, StatusCodes.Status404NotFound, closed.Code, closed.Message)
            : Refused(context, reply, problem);

    private static IResult Refused(HttpContext context, object? reply, IResult? problem) => reply switch
    {
        SessionRejected rejected => Problems.ForCode(context, rejected.Code, rejected.Message),
        _ => problem ?? Unanswered(context),
    };

    private static IResult Unanswered(HttpContext context) =>
        Problems.Problem(context, StatusCodes.Status503ServiceUnavailable, "unavailable", "the actor system did not answer in time; try again");

    /// <summary>A swap or a dashboard assignment not answered in time: it may still apply (sent again, a swap would undo it).</summary>
    internal static IResult RoleChangeUnanswered(HttpContext context) =>
        Problems.Problem(context, StatusCodes.Status504GatewayTimeout, GatewayTimeout,
            $"the actor system did not answer in {AskTimeout.TotalSeconds:0} s: the role change may still apply, so a swap sent again may " +
            "undo it; GET /api/accounts says which account has which role");

    /// <summary>
    /// A prompt whose submission was not answered in time: the session may have accepted it all the same (and it may run),
    /// so the answer is 504 <c>gateway_timeout</c> telling where to look, not an invitation to send it again.
    /// </summary>
    internal static IResult SubmitUnanswered(HttpContext context, string? sessionId) =>
        Problems.Problem(context, StatusCodes.Status504GatewayTimeout, GatewayTimeout,
            $"the actor system did not answer in {AskTimeout.TotalSeconds:0} s: the prompt may have been accepted and may still run, " +
            (sessionId is null
                ? "so sending it again may run it twice"
                : $"so sending it again may run it twice; GET /api/session/{Uri.EscapeDataString(sessionId)}/events says whether it ran"));

    // Ids (claude-sonnet-4-5), aliases (sonnet, opus[1m]), Vertex (claude-opus-4-1@20250805) and Bedrock (arn:aws:...:.../...) names.
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._:\[\]@/-]{0,199}\z")]
    private static partial Regex ModelName();
}
