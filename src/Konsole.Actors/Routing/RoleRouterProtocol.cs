using Akka.Actor;
using Konsole.Actors.Prompts;
using static Konsole.Actors.Accounts.AccountProtocol;

namespace Konsole.Actors.Routing;

public enum Role
{
    /// <summary>Full agentic turns, on the account's <see cref="ProcessMode.Full"/> process.</summary>
    Dashboard,

    /// <summary>Short answers without tools, on the account's <see cref="ProcessMode.Chat"/> process.</summary>
    QuickTurn,
}

public static class RoleRouterProtocol
{
    // Commands

    /// <summary>Sends a prompt to the account that has <paramref name="Role"/> now. Replies go to the prompt's ReplyTo.</summary>
    public sealed record RoutePrompt(Role Role, Prompt Prompt);

    /// <summary>
    /// Sends a prompt to a named account, whatever its role; unknown accounts fail it with <c>account_unavailable</c>. While
    /// that account is rate-limited, a full or chat prompt goes where its mode's role is routed (a worker's fails).
    /// </summary>
    public sealed record RouteToAccount(string AccountId, ProcessMode Mode, Prompt Prompt);

    /// <summary>
    /// Assigns a worker session to an account (the one with the fewest worker sessions, an account without the
    /// dashboard role first); replied with <see cref="WorkerAssigned"/>. Idempotent.
    /// </summary>
    /// <param name="PreferredAccountId">The account it had before a restart, kept when it still exists.</param>
    public sealed record AssignWorker(string SessionId, string? PreferredAccountId = null);

    public sealed record WorkerAssigned(string SessionId, string AccountId);

    /// <summary>
    /// Sends a prompt to the worker process of its user session, on the account the session is assigned to (assigned now if new).
    /// A worker session waiting there for a worker place moves to an account with one free (its session is told with
    /// <see cref="WorkerAssigned"/>).
    /// </summary>
    public sealed record RouteWorkerPrompt(Prompt Prompt);

    /// <summary>A user session closed: a worker session's process is closed and its place freed; what was kept for its prompts goes.</summary>
    public sealed record ReleaseSession(string SessionId);

    /// <summary>Drains every account (see <c>AccountProtocol.Drain</c>): the host is stopping.</summary>
    public sealed record DrainAccounts(TimeSpan Timeout);

    /// <summary>
    /// Stops the router as the host stops (a <c>GracefulStop</c> message): once the roles' journal has written the roles it was
    /// given, so a swap answered just before is not lost (a <c>PoisonPill</c> stops the journal with writes still waiting).
    /// </summary>
    public sealed record StopRouter
    {
        public static readonly StopRouter Instance = new();
    }

    /// <summary>Refreshes an account's OAuth token between turns; replied with <c>RefreshScheduled</c> or <c>RefreshRefused</c> (see <c>AccountProtocol</c>).</summary>
    public sealed record RefreshAccount(string AccountId);

    /// <summary>Interrupts a running prompt or drops a queued one, on whichever account has it.</summary>
    /// <param name="Caller">The session that sent the prompt; null: any prompt with this id.</param>
    public sealed record InterruptPrompt(string PromptId, IActorRef? Caller = null);

    /// <summary>Swaps the dashboard and quickturn accounts; replied with <see cref="RolesChanged"/>. Starts and stops no process.</summary>
    public sealed record SwapRoles
    {
        public static readonly SwapRoles Instance = new();
    }

    /// <summary>
    /// Puts an account on the dashboard role; the account that had it takes the quickturn role. Replied with
    /// <see cref="RolesChanged"/>, or <see cref="RoleChangeRejected"/> for an unknown account.
    /// </summary>
    public sealed record AssignDashboard(string AccountId);

    public sealed record RolesChanged(RoleAssignment Roles);

    public sealed record RoleChangeRejected(string Reason);

    // Queries

    /// <summary>Replied with <see cref="RoleStatus"/> (the shape of konsole's <c>getAccountSessionStatus</c>).</summary>
    public sealed record GetRoleStatus
    {
        public static readonly GetRoleStatus Instance = new();
    }

    public sealed record RoleStatus(RoleSlot Dashboard, RoleSlot QuickTurn);

    /// <param name="Busy">The process serving the role on that account (full for the dashboard, chat for quick turns) runs a turn.</param>
    /// <param name="SessionId">The user session whose turn that process runs, if any.</param>
    public sealed record RoleSlot(string AccountId, bool Busy, string? SessionId);

    /// <summary>Replied at once with <see cref="Readiness"/>: waiting while the roles are read back or a hot process starts.</summary>
    public sealed record GetReadiness
    {
        public static readonly GetReadiness Instance = new();
    }

    /// <summary>
    /// Replied at once with <see cref="WorkInProgress"/>, also while the roles are read back (nothing is routed then, but an
    /// account may be refreshing its token): what a drain waits for.
    /// </summary>
    public sealed record GetWorkInProgress
    {
        public static readonly GetWorkInProgress Instance = new();
    }

    /// <param name="BusyAccounts">Accounts running a turn.</param>
    /// <param name="Refreshing">Accounts refreshing their OAuth token (one cut short could lose the login).</param>
    public sealed record WorkInProgress(int BusyAccounts, int Refreshing);

    /// <summary>Replied with <see cref="AccountsView"/>: every account, in configuration order, with its role.</summary>
    public sealed record GetAccounts
    {
        public static readonly GetAccounts Instance = new();
    }

    public sealed record AccountsView(RoleAssignment Roles, IReadOnlyList<AccountView> Accounts);

    /// <param name="Role">The account's role, or null when it has none.</param>
    public sealed record AccountView(AccountStatus Status, Role? Role);

    public sealed record RoleAssignment(string Dashboard, string QuickTurn);

    // Events, on the actor system's event stream

    public sealed record AccountsSwapped(RoleAssignment Previous, RoleAssignment Current);
}
