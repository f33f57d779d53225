using System.Threading.Channels;
using Akka.Event;

namespace Konsole.Actors.Sessions;

public enum SessionType
{
    /// <summary>All tools, a persistent conversation, on the account with the dashboard role.</summary>
    Full,

    /// <summary>No tools, every turn from an empty conversation, on the account with the quickturn role.</summary>
    Chat,

    /// <summary>All tools, its own conversation on a CLI process of its own, in the background.</summary>
    Worker,
}

/// <summary>
/// One event of a session, numbered from 1 within it: a line the CLI printed for one of its prompts
/// (<see cref="Type"/> is the line's own <c>type</c>, <see cref="Data"/> the line verbatim), or a gateway
/// event: <c>queued</c> <c>{"position":N,"accountId":"..."}</c>, <c>dropped</c> <c>{"type":"...","bytes":N,"maxLineBytes":N}</c>
/// (in place of a CLI line too long to keep) or <c>error</c> <c>{"code":"...","message":"..."}</c>.
/// </summary>
/// <param name="Data">UTF-8 JSON.</param>
/// <param name="EndsPrompt">The prompt's last event: its <c>result</c>, or an <c>error</c>.</param>
public sealed record SessionEvent(long Id, string PromptId, string Type, ReadOnlyMemory<byte> Data, bool EndsPrompt)
{
    /// <summary><see cref="Data"/> as text, decoded on each call.</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(Data.Span);
}

/// <param name="AccountId">The account serving the session: a worker's, or the one that ran its latest turn.</param>
/// <param name="ClaudeSessionId">The CLI's session id of its conversation (full and worker sessions).</param>
/// <param name="LastEventId">The id of its latest event; 0 before the first.</param>
/// <param name="Model">The model its turns run on; null: the account's.</param>
public sealed record SessionInfo(
    string SessionId,
    SessionType Type,
    string? AccountId,
    string State,
    string? ClaudeSessionId,
    int Turns,
    long LastEventId,
    string? Model = null);

public static class SessionErrorCodes
{
    public const string NotFound = "session_not_found";
    public const string Closed = "session_closed";
    public const string InvalidId = "invalid_session_id";
    public const string Exists = "session_exists";
    public const string Unavailable = "session_unavailable";
    public const string TypeMismatch = "session_type_mismatch";
    public const string TooMany = "too_many_sessions";
}

/// <summary>Messages of the <see cref="SessionManager"/> and its <see cref="SessionActor"/>s. Each command is
/// answered with its reply or a <see cref="SessionRejected"/>.</summary>
public static class SessionProtocol
{
    // Commands

    /// <summary>
    /// Creates a session (with <paramref name="SessionId"/>, or a new id) whose turns run on <paramref name="Model"/> (null:
    /// the account's); replied with <see cref="SessionInfo"/>.
    /// </summary>
    public sealed record CreateSession(SessionType Type, string? SessionId = null, string? Model = null);

    /// <summary>
    /// Runs a prompt in a session; replied with <see cref="PromptAccepted"/>, whose reader carries every event of the
    /// prompt and completes after the last. With <paramref name="CreateAs"/>, a missing session is created first, and a session
    /// of another type refuses it (<see cref="SessionErrorCodes.TypeMismatch"/>).
    /// </summary>
    public sealed record SubmitPrompt(string SessionId, string Text, SessionType? CreateAs = null)
    {
        private bool PrintMembers(System.Text.StringBuilder builder) // as Prompt's: the text's length, not the text
        {
            builder.Append($"SessionId = {SessionId}, TextLength = {Text.Length}, CreateAs = {CreateAs}");
            return true;
        }
    }

    /// <summary>
    /// Runs a prompt in a new chat session that closes once the prompt has ended (a quick turn); replied with
    /// <see cref="PromptAccepted"/>.
    /// </summary>
    public sealed record SubmitQuickTurn(string Text)
    {
        private bool PrintMembers(System.Text.StringBuilder builder)
        {
            builder.Append($"TextLength = {Text.Length}");
            return true;
        }
    }

    /// <summary>
    /// Follows a session's events: those after <paramref name="After"/> still in its replay buffer, then each new one,
    /// until the session closes or <see cref="Unfollow"/>. Replied with <see cref="EventsFollowed"/>.
    /// </summary>
    public sealed record FollowEvents(string SessionId, long After);

    /// <summary>Ends a subscription (of <see cref="PromptAccepted"/> or <see cref="EventsFollowed"/>); no reply.</summary>
    public sealed record Unfollow(string SessionId, string SubscriptionId);

    /// <summary>Interrupts the session's running prompt and drops its queued ones; replied with <see cref="SessionInterrupted"/>.</summary>
    public sealed record InterruptSession(string SessionId);

    /// <summary>
    /// Closes a session: its prompts are interrupted and end with <c>session_closed</c>, a worker's process stops,
    /// its buffer is freed. Replied with <see cref="SessionClosed"/>.
    /// </summary>
    public sealed record CloseSession(string SessionId);

    // Queries

    /// <summary>Replied with <see cref="SessionInfo"/>.</summary>
    public sealed record GetSession(string SessionId);

    /// <summary>Replied at once with <see cref="Readiness"/>: waiting while the open sessions are read back from the journal.</summary>
    public sealed record GetReadiness
    {
        public static readonly GetReadiness Instance = new();
    }

    // Replies

    /// <param name="Events">Its events; completed with a <see cref="PromptNotStartedException"/> when the host stops before it started.</param>
    public sealed record PromptAccepted(string SessionId, string PromptId, string SubscriptionId, ChannelReader<SessionEvent> Events);

    /// <summary>
    /// Ends a prompt's events (<see cref="PromptAccepted.Events"/>) when the host began to stop while it still waited in its
    /// account's queue: it does not run before the host stops; a session that journals it runs it after the restart (its
    /// outcome then among the session's events), a quick turn is not run at all.
    /// </summary>
    public sealed class PromptNotStartedException() : Exception("the host is stopping before this prompt started");

    /// <param name="FirstAvailable">The oldest event id still buffered: events between After and it are gone.</param>
    public sealed record EventsFollowed(string SessionId, string SubscriptionId, long FirstAvailable, ChannelReader<SessionEvent> Events);

    /// <param name="Prompts">How many prompts (running or queued) were interrupted.</param>
    public sealed record SessionInterrupted(string SessionId, int Prompts);

    public sealed record SessionClosed(string SessionId);

    /// <summary><see cref="Code"/> is one of <see cref="SessionErrorCodes"/>.</summary>
    public sealed record SessionRejected(string Code, string Message);

    /// <summary>From a session to its manager: it is stopping on a fault (its journal failed) and starts again from its journal.</summary>
    /// <param name="LastEventId">The last event id it hands out (its journal may not have that far yet): the session started
    /// again hands out ids above it.</param>
    public sealed record SessionFaulted(string SessionId, long LastEventId);

    /// <summary>
    /// From a session to its manager: the bytes its replay buffer keeps now (konsole.sessions.replay-total-bytes), at each
    /// prompt's end and in answer to <see cref="GiveUpReplay"/>; <paramref name="Running"/>: it runs a prompt, so it keeps them.
    /// </summary>
    public sealed record ReplayHeld(string SessionId, long Bytes, bool Running = false) : IDeadLetterSuppression;

    /// <summary>From the manager to a session: the sessions' buffers together keep too much; with no prompt running it gives up its events.</summary>
    public sealed record GiveUpReplay : IDeadLetterSuppression
    {
        public static readonly GiveUpReplay Instance = new();
    }

    // Events, on the actor system's event stream

    public sealed record SessionOpened(SessionInfo Session);

    public sealed record SessionEnded(string SessionId, SessionType Type);
}
