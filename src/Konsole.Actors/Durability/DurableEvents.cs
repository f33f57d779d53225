using Konsole.Actors.Sessions;

namespace Konsole.Actors.Durability;

/// <summary>
/// What the actors write to their journals: facts about roles, sessions and prompts (never a token). Each has a stable
/// name in <see cref="DurableEventSerializer"/>; change one only by adding a new name.
/// </summary>
public interface IDurableEvent;

/// <summary>
/// The roles after a swap or an assignment (the <c>RoleRouter</c>'s journal), and the roles <c>konsole.roles</c> gave then
/// (null in records written before they were kept).
/// </summary>
public sealed record RolesAssigned(string Dashboard, string QuickTurn, string? ConfiguredDashboard = null, string? ConfiguredQuickTurn = null)
    : IDurableEvent;

/// <summary>A session was opened (the <c>SessionManager</c>'s journal), with the model its turns run on (null: the account's).</summary>
public sealed record SessionRegistered(string SessionId, SessionType Type, string? Model = null) : IDurableEvent;

/// <summary>A session was closed; its id stays taken.</summary>
public sealed record SessionUnregistered(string SessionId) : IDurableEvent;

/// <summary>The <c>SessionManager</c>'s state in one piece.</summary>
public sealed record SessionsSnapshot(IReadOnlyList<SessionRegistered> Open, IReadOnlyList<string> Closed) : IDurableEvent;

// A session's journal.

/// <summary>A session's conversation (full and worker sessions): the CLI's session id, and the account whose config dir holds it.</summary>
public sealed record ConversationRecorded(string ClaudeSessionId, string AccountId, string ConfigDir);

/// <summary>The account a worker session was given.</summary>
public sealed record WorkerAccountRecorded(string AccountId) : IDurableEvent;

/// <summary>A prompt was accepted. Until <see cref="PromptDispatchRecorded"/> it has not reached a CLI, and after a restart it runs.</summary>
public sealed record PromptRecorded(string PromptId, string Text) : IDurableEvent;

/// <summary>
/// The prompt is about to reach a CLI (written before it does). Without <see cref="PromptEndRecorded"/> after it, a restart
/// reports the prompt <c>interrupted</c> and never runs it again: the CLI may already have run tools.
/// </summary>
public sealed record PromptDispatchRecorded(string PromptId) : IDurableEvent;

/// <summary>
/// The prompt ended (written before its last event is shown); <paramref name="Completed"/>: with its result, a turn on
/// <paramref name="AccountId"/>, after which the session's conversation is <paramref name="Conversation"/> (if it has one).
/// Otherwise <paramref name="Error"/> says how it ended, one of <see cref="Prompts.TurnErrorCodes"/> (<c>interrupted</c>, or the
/// failure's code; null in records written before it was kept).
/// </summary>
public sealed record PromptEndRecorded(
    string PromptId, bool Completed, string? AccountId = null, ConversationRecorded? Conversation = null, string? Error = null)
    : IDurableEvent;

/// <summary>Event ids up to <paramref name="UpTo"/> may be handed out: after a restart, numbering goes on above it.</summary>
public sealed record EventIdsReserved(long UpTo) : IDurableEvent;

/// <summary>A session's state in one piece.</summary>
public sealed record SessionSnapshot(
    ConversationRecorded? Conversation,
    string? AccountId,
    int Turns,
    long EventIdsReservedUpTo,
    IReadOnlyList<PendingPrompt> Prompts) : IDurableEvent;

/// <summary>A prompt not ended yet, as a snapshot keeps it.</summary>
public sealed record PendingPrompt(string PromptId, string Text, bool Dispatched);
