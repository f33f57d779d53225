using System.Text.Json.Serialization;
using Konsole.Actors.Accounts;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using static Konsole.Actors.Accounts.AccountProtocol;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Gateway;

/// <summary>The JSON bodies of the v1 contract (camelCase on the wire), built from the actors' replies.</summary>
public static class ApiViews
{
    public sealed record AccountsBody(IReadOnlyList<AccountBody> Accounts);

    public sealed record AccountBody(
        string Id,
        string Label,
        string? Role,
        bool SessionBusy,
        string? ActiveSessionId,
        string? RateLimitTier,
        string? ExpiresIn,
        string State,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? StateReason,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OAuthError,
        int QueueDepth,
        RateLimitBody RateLimit,
        bool Simulated,
        IReadOnlyList<ProcessBody> Processes);

    public sealed record RateLimitBody(string? Status, DateTimeOffset? ResetsAt, string? Type, double? Utilization);

    public sealed record ProcessBody(string Mode, int? Pid, bool Busy, string? ConversationId, int Restarts,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SessionId);

    public sealed record RoleStatusBody(RoleSlotBody Dashboard, RoleSlotBody QuickTurn);

    public sealed record RoleSlotBody(string AccountId, bool Busy, string? SessionId);

    public sealed record HotStatusBody(int PoolSize, int TargetSize, int ActiveSessions);

    public sealed record SessionBody(string SessionId, string Type, string? AccountId, string State, string? ClaudeSessionId, int Turns, long LastEventId,
        string? Model);

    public static AccountsBody Accounts(AccountsView view, IReadOnlyDictionary<string, bool> simulated, DateTimeOffset now) =>
        new(view.Accounts.Select(a => Account(a, simulated.GetValueOrDefault(a.Status.AccountId), now)).ToArray());

    public static RoleStatusBody RoleStatus(RoleStatus status) =>
        new(new(status.Dashboard.AccountId, status.Dashboard.Busy, status.Dashboard.SessionId),
            new(status.QuickTurn.AccountId, status.QuickTurn.Busy, status.QuickTurn.SessionId));

    /// <summary>Hot processes running (full and chat, warm), how many there should be, and turns running now.</summary>
    public static HotStatusBody HotStatus(AccountsView view)
    {
        var processes = view.Accounts.SelectMany(a => a.Status.Processes).ToList();
        var hot = processes.Where(p => p.Mode != ProcessMode.Worker).ToList();
        return new(hot.Count(p => p.ProcessId is not null), view.Accounts.Count * 2, processes.Count(p => p.Busy));
    }

    public static SessionBody Session(SessionInfo info) =>
        new(info.SessionId, Name(info.Type), info.AccountId, info.State, info.ClaudeSessionId, info.Turns, info.LastEventId, info.Model);

    public static string Name(SessionType type) => type.ToString().ToLowerInvariant();

    public static string Name(AccountState state) => state == AccountState.RateLimited ? "rate-limited" : state.ToString().ToLowerInvariant();

    public static string Name(Role role) => role == Role.Dashboard ? "dashboard" : "quickturn";

    /// <summary>A domain event of the event stream as <c>/api/events</c> shows it, or null for one it does not show.</summary>
    public static (string Kind, object Body)? SystemEvent(object domainEvent) => domainEvent switch
    {
        AccountsSwapped e => ("accounts.swapped", new
        {
            kind = "accounts.swapped",
            dashboard = e.Current.Dashboard,
            quickTurn = e.Current.QuickTurn,
            previous = new { dashboard = e.Previous.Dashboard, quickTurn = e.Previous.QuickTurn },
        }),
        AccountStateChanged e => ("account.state", new
        {
            kind = "account.state",
            accountId = e.AccountId,
            state = Name(e.State),
            previous = Name(e.Previous),
            busy = e.Busy,
            reason = e.Reason,
        }),
        ProcessRestarted e => ("process.restarted", new
        {
            kind = "process.restarted",
            accountId = e.AccountId,
            mode = e.Mode.ToString().ToLowerInvariant(),
            attempt = e.Attempt,
            delayMs = (long)e.Delay.TotalMilliseconds,
            reason = e.Reason,
        }),
        AccountRateLimited e => ("account.rate-limited", new
        {
            kind = "account.rate-limited",
            accountId = e.AccountId,
            status = e.Status,
            resetsAt = e.ResetsAt,
            utilization = e.Utilization,
        }),
        OAuthTokenRefreshed e => ("oauth.refreshed", new { kind = "oauth.refreshed", accountId = e.AccountId, expiresAt = e.ExpiresAt }),
        OAuthRefreshFailed e => ("oauth.refresh-failed", new { kind = "oauth.refresh-failed", accountId = e.AccountId, reason = e.Reason, retryable = e.Retryable }),
        SessionProtocol.SessionOpened e => ("session.created", new { kind = "session.created", sessionId = e.Session.SessionId, type = Name(e.Session.Type) }),
        SessionProtocol.SessionEnded e => ("session.closed", new { kind = "session.closed", sessionId = e.SessionId, type = Name(e.Type) }),
        _ => null,
    };

    private static AccountBody Account(AccountView view, bool simulated, DateTimeOffset now)
    {
        var s = view.Status;
        return new AccountBody(
            s.AccountId,
            s.Label,
            view.Role is { } role ? Name(role) : null,
            s.Busy,
            s.ActiveSessionId,
            s.Tier,
            s.UsesApiKey || s.ExpiresAt is null ? null : AccountCredentials.FormatExpiresIn(s.ExpiresAt.Value, now),
            Name(s.State),
            s.StateReason,
            s.OAuthError,
            s.QueueDepth,
            new RateLimitBody(s.RateLimit?.Status ?? "allowed", s.RateLimit?.ResetsAt, s.RateLimit?.LimitType, s.RateLimit?.Utilization),
            simulated,
            s.Processes.Select(p => new ProcessBody(p.Mode.ToString().ToLowerInvariant(), p.ProcessId, p.Busy, p.ConversationId, p.Restarts, p.WorkerSessionId)).ToArray());
    }
}
