using Akka.Actor;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Prompts;

/// <summary>Which hot process of an account serves a prompt.</summary>
public enum ProcessMode
{
    /// <summary>All tools, a persistent conversation.</summary>
    Full,

    /// <summary>No tools, every turn starts from an empty conversation.</summary>
    Chat,

    /// <summary>All tools, a process of its own for one (background) worker session.</summary>
    Worker,
}

/// <summary>
/// A conversation and where its transcript was last written. A conversation belongs to the user session
/// that started it: the caller keeps the latest reference (from <see cref="TurnCompleted"/>) and passes
/// it with its next prompt, on whichever account that lands.
/// </summary>
public sealed record ConversationRef(string SessionId, string AccountId, string ConfigDir);

/// <summary>
/// One prompt. Its caller receives, in order: zero or more <see cref="PromptQueued"/> (and <see cref="PromptNotStarted"/>), zero or more
/// <see cref="TurnOutput"/> and <see cref="TurnLineDropped"/>, then exactly one of <see cref="TurnCompleted"/> or <see cref="TurnFailed"/>.
/// </summary>
/// <param name="PromptId">A GUID string; sent to the CLI as the user message's <c>uuid</c>.</param>
/// <param name="UserSessionId">The caller's session (the UI's session id).</param>
/// <param name="Conversation">The conversation to continue, or null for a new one.</param>
/// <param name="ConfirmDispatch">
/// Before the prompt reaches a CLI, its caller is sent <see cref="DispatchRequested"/> and must answer
/// <see cref="DispatchConfirmed"/> (having recorded that it may have run) or <see cref="DispatchRefused"/>.
/// </param>
/// <param name="Model">The model the turn runs on (<c>set_model</c> before it when the process runs another); null: the
/// process's own (its <c>--model</c> in <c>konsole.claude.extra-args</c>, else the CLI's default).</param>
/// <param name="After">The same session's previous prompt, when that one had not ended yet as this one was sent: where it ran
/// last, the conversation is newer than <paramref name="Conversation"/> says.</param>
public sealed record Prompt(string PromptId, string UserSessionId, string Text, ConversationRef? Conversation, IActorRef ReplyTo,
    bool ConfirmDispatch = false, string? Model = null, string? After = null)
{
    public static string NewId() => Guid.NewGuid().ToString();

    /// <summary>The text's length, not the text (a user's own words, up to megabytes): a message holding a prompt is printed when it goes to dead letters.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"PromptId = {PromptId}, UserSessionId = {UserSessionId}, TextLength = {Text.Length}, Conversation = {Conversation}, ");
        builder.Append($"ReplyTo = {ReplyTo}, ConfirmDispatch = {ConfirmDispatch}, Model = {Model}, After = {After}");
        return true;
    }
}

/// <summary>The prompt is about to reach a CLI of <paramref name="AccountId"/> (see <see cref="Prompt.ConfirmDispatch"/>); answer the sender.</summary>
public sealed record DispatchRequested(string PromptId, string AccountId);

/// <summary>The caller recorded the dispatch: the prompt may go to the CLI.</summary>
public sealed record DispatchConfirmed(string PromptId);

/// <summary>The caller no longer wants the prompt run (its session closed): it is dropped.</summary>
public sealed record DispatchRefused(string PromptId);

/// <summary>The prompt waits behind others; <paramref name="Position"/> 1 runs next. Sent again as it moves up.</summary>
public sealed record PromptQueued(string PromptId, string AccountId, int Position);

/// <summary>
/// The host is stopping and the prompt still waits in its account's queue: it does not start before the host stops (a
/// journaled one runs after the restart). Sent once, after its <see cref="PromptQueued"/>; its end still follows.
/// </summary>
public sealed record PromptNotStarted(string PromptId);

/// <summary>One stdout line of the prompt's turn, in the order the CLI printed it (the result included).</summary>
public sealed record TurnOutput(string PromptId, CliFrame Frame);

/// <summary>
/// A stdout line of the turn, in its place among the <see cref="TurnOutput"/>s, was over <c>konsole.claude.max-line-bytes</c>
/// and was dropped (a result line instead ends the turn with <see cref="TurnErrorCodes.ResultTooLarge"/>).
/// </summary>
/// <param name="Type">The line's <c>type</c>, when it could be read from the line's start.</param>
public sealed record TurnLineDropped(string PromptId, string? Type, long Bytes, long MaxLineBytes);

/// <summary>The turn ended with its <c>result</c> frame (which may have <c>is_error</c>).</summary>
/// <param name="Conversation">The conversation after this turn (null for chat turns).</param>
/// <param name="AccountId">The account whose process ran the turn.</param>
public sealed record TurnCompleted(string PromptId, CliFrame Result, ConversationRef? Conversation, string AccountId);

/// <summary>The prompt ended without a result. <see cref="Code"/> is one of <see cref="TurnErrorCodes"/>.</summary>
/// <param name="RetryAfter">When trying again makes sense (no account available until a rate limit resets).</param>
/// <param name="Conversation">The conversation after the turn, when it ran to its end on the CLI all the same (<c>result_too_large</c>).</param>
public sealed record TurnFailed(string PromptId, string Code, string Message, TimeSpan? RetryAfter = null, ConversationRef? Conversation = null);

public static class TurnErrorCodes
{
    public const string ProcessCrashed = "process_crashed";
    public const string TurnTimeout = "turn_timeout";
    public const string Interrupted = "interrupted";
    public const string QueueFull = "queue_full";
    public const string AccountUnavailable = "account_unavailable";
    public const string SessionClosed = "session_closed";
    public const string JournalUnavailable = "journal_unavailable";
    public const string ModelUnavailable = "model_unavailable";

    /// <summary>The turn ran, but its result line was over <c>konsole.claude.max-line-bytes</c> and was dropped.</summary>
    public const string ResultTooLarge = "result_too_large";
}
