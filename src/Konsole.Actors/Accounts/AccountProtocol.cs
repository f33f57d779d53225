using Konsole.Actors.Configuration;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Accounts;

public enum AccountState
{
    Starting,
    Idle,
    Busy,
    Restarting,
    Refreshing,
    RateLimited,
    Failed,
}

public static class AccountProtocol
{
    // Commands

    /// <summary>
    /// Queues a prompt for the account's process of <paramref name="Mode"/> (for <see cref="ProcessMode.Worker"/>: the
    /// worker process of the prompt's user session). Beyond <c>queue.max-depth</c> it fails at once with <c>queue_full</c>.
    /// </summary>
    public sealed record SubmitPrompt(Prompt Prompt, ProcessMode Mode);

    /// <summary>Interrupts a running prompt, or drops a queued one (it fails with <c>interrupted</c>). Unknown ids are ignored.</summary>
    public sealed record InterruptPrompt(string PromptId);

    /// <summary>
    /// Closes the worker process of a worker session (prompts with <see cref="ProcessMode.Worker"/> create it): its
    /// prompts fail with <c>session_closed</c>, and a worker session waiting for a place gets it.
    /// </summary>
    public sealed record StopWorker(string SessionId);

    /// <summary>
    /// A worker session waiting here for a worker place goes elsewhere: if it still waits (it has prompts, and no process), its
    /// slot closes and its prompts are handed to the parent (<see cref="WaitingWorkerReleased"/>); otherwise, or once the host
    /// stops, it stays (<see cref="WorkerNotReleased"/>).
    /// </summary>
    public sealed record ReleaseWaitingWorker(string SessionId);

    /// <summary>
    /// The host is stopping: no prompt starts any more (new ones fail with <c>account_unavailable</c>, queued ones wait
    /// for the account to stop), running turns get <paramref name="Timeout"/> to finish and are then interrupted.
    /// </summary>
    public sealed record Drain(TimeSpan Timeout);

    /// <summary>
    /// Refreshes the account's OAuth token as soon as no turn runs on it (prompts wait meanwhile). Replied with
    /// <see cref="RefreshScheduled"/>, or <see cref="RefreshRefused"/> for an account without an OAuth login or once the host stops.
    /// </summary>
    public sealed record RefreshCredentials
    {
        public static readonly RefreshCredentials Instance = new();
    }

    public sealed record RefreshScheduled(string AccountId);

    /// <param name="Code"><c>account_not_found</c>, <c>not_oauth</c>, <c>shutting_down</c>, or <c>account_unavailable</c> (its actor stopped).</param>
    public sealed record RefreshRefused(string AccountId, string Code, string Reason);

    // Queries

    /// <summary>Replied with <see cref="AccountStatus"/>.</summary>
    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    /// <summary>
    /// An account as it is now. Also sent to the account's parent whenever it changes.
    /// </summary>
    /// <param name="ActiveSessionId">The user session whose turn is running, if any.</param>
    /// <param name="QueueDepth">Prompts waiting (not counting running turns).</param>
    /// <param name="ExpiresAt">When the OAuth access token expires; null for API-key accounts or when unknown.</param>
    /// <param name="Processes">Its full and chat process first, workers waiting for a place last, in the order they began to wait.</param>
    /// <param name="StateReason">Why the account is in its state, where that needs saying (why it failed).</param>
    /// <param name="OAuthError">Why its last OAuth refresh failed, until one succeeds; or why no login can be read from its credentials file.</param>
    /// <param name="RateLimitedUntil">While it is <see cref="AccountState.RateLimited"/>: when that hold ends (its limit's reset, or a
    /// hold of its own where the CLI gave none).</param>
    public sealed record AccountStatus(
        string AccountId,
        string Label,
        string? Tier,
        AccountState State,
        string? ActiveSessionId,
        int QueueDepth,
        bool UsesApiKey,
        DateTimeOffset? ExpiresAt,
        RateLimitInfo? RateLimit,
        IReadOnlyList<ProcessStatus> Processes,
        string? StateReason = null,
        string? OAuthError = null,
        bool RefreshRunning = false,
        DateTimeOffset? RateLimitedUntil = null)
    {
        public bool Busy => Processes.Any(p => p.Busy);

        /// <summary>Every hot process (workers aside) is started and answered <c>initialize</c>.</summary>
        public bool Warm => Processes.Where(p => p.Mode != ProcessMode.Worker).All(p => p.ProcessId is not null);

        /// <summary>An account whose actor has not reported yet.</summary>
        public static AccountStatus Starting(AccountSettings account) => new(account.Id, account.Label, account.Tier,
            AccountState.Starting, null, 0, account.UsesApiKey, null, null,
            [new(ProcessMode.Full, null, false, null, 0), new(ProcessMode.Chat, null, false, null, 0)]);
    }

    /// <param name="ProcessId">The OS process id, null while (re)starting or, for a worker, waiting for a place.</param>
    /// <param name="ConversationId">The Claude session id the process holds, if known.</param>
    /// <param name="WorkerSessionId">The worker session a worker process serves.</param>
    /// <param name="ActiveSessionId">The user session whose turn the process runs, if any.</param>
    /// <param name="WaitsForPlace">A worker with prompts and no process: it waits for a worker place.</param>
    /// <param name="Parked">A worker without prompts or a process (its place was taken while it was idle, or it never had a prompt).</param>
    public sealed record ProcessStatus(ProcessMode Mode, int? ProcessId, bool Busy, string? ConversationId, int Restarts,
        string? WorkerSessionId = null, string? ActiveSessionId = null, bool WaitsForPlace = false, bool Parked = false);

    /// <summary>
    /// To the parent: a full or chat prompt the account will not run now (it is rate-limited), sent after the status that
    /// says so; the parent routes it again by its mode's role.
    /// </summary>
    /// <param name="AccountId">The account handing it back.</param>
    public sealed record PromptHandedBack(Prompt Prompt, ProcessMode Mode, string AccountId);

    /// <summary>To the parent: a waiting worker session's slot closed; its prompts, none of which reached a CLI, in order.</summary>
    public sealed record WaitingWorkerReleased(string SessionId, IReadOnlyList<Prompt> Prompts);

    /// <summary>To the parent: the worker session stays where it is (its process started meanwhile, it closed, or the host stops).</summary>
    public sealed record WorkerNotReleased(string SessionId);

    // Events, on the actor system's event stream

    /// <summary>Its state changed, or whether it runs a turn (<paramref name="Busy"/>), which another state may hide (restarting, ...).</summary>
    public sealed record AccountStateChanged(string AccountId, AccountState State, AccountState Previous, string? Reason, bool Busy);

    /// <summary>The account's OAuth login was refreshed; the new access token lives until <paramref name="ExpiresAt"/>.</summary>
    public sealed record OAuthTokenRefreshed(string AccountId, DateTimeOffset ExpiresAt);

    /// <summary>A refresh failed; <paramref name="Retryable"/>: the login may still work later, otherwise it needs a new <c>claude login</c>.</summary>
    public sealed record OAuthRefreshFailed(string AccountId, string Reason, bool Retryable);

    /// <summary>
    /// The account hit its rate limit (<c>rejected</c>: no traffic until <paramref name="ResetsAt"/>) or came close to it
    /// (<c>allowed_warning</c> at or above <c>konsole.rate-limits.warning-utilization</c>): role traffic moves to a healthy account.
    /// </summary>
    public sealed record AccountRateLimited(string AccountId, string Status, DateTimeOffset? ResetsAt, double? Utilization);

    /// <summary>A crashed process was started again after <paramref name="Delay"/>.</summary>
    public sealed record ProcessRestarted(string AccountId, ProcessMode Mode, int Attempt, TimeSpan Delay, string Reason);
}
