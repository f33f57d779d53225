using Konsole.Actors.Configuration;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;

namespace Konsole.Actors.Processes;

/// <summary>What a <see cref="HotProcessActor"/> needs to start its CLI process.</summary>
/// <param name="ConfigDir">The account's config dir, named in the conversations the process reports.</param>
/// <param name="ResumeSessionId">A conversation to continue (<c>--resume</c>); null starts an empty one.</param>
/// <param name="Claude">Its timeouts: start, stop grace, turn (watchdog) and interrupt.</param>
public sealed record HotProcessSpec(
    string AccountId,
    ProcessMode Mode,
    string ConfigDir,
    ProcessLaunch Launch,
    string? ResumeSessionId,
    ClaudeSettings Claude);

public static class HotProcessProtocol
{
    // Commands, from the owning account.

    /// <summary>Runs one prompt; with <paramref name="ClearFirst"/> the conversation is emptied (<c>/clear</c>) first.</summary>
    public sealed record RunTurn(Prompt Prompt, bool ClearFirst);

    /// <summary>Interrupts the prompt's turn if it is the one running; it then ends with its result.</summary>
    public sealed record InterruptTurn(string PromptId);

    // Events, to the owning account (the parent).

    /// <summary>The process answered <c>initialize</c>: it is warm and waits for a prompt.</summary>
    public sealed record ProcessReady(int ProcessId);

    /// <summary>The turn ended and the process can take the next prompt.</summary>
    public sealed record TurnFinished(string PromptId, string? SessionId, bool IsError);

    /// <summary>A <c>rate_limit_event</c> the process printed.</summary>
    public sealed record RateLimitObserved(RateLimitInfo Info);

    /// <summary>
    /// The process ended without being asked to (or never became ready, or the watchdog killed it). The actor stops
    /// right after. A turn that was running gets no result: its owner reports it, unless the actor already told its
    /// caller how it ended (<paramref name="TurnReported"/>, the prompt id: a watchdog kill ends it with turn_timeout).
    /// <paramref name="SentTurn"/> names the prompt the process had written to the CLI: a running prompt it does not name
    /// (still waiting for a <c>/clear</c> or <c>set_model</c>, or never received) never reached the CLI, and may run elsewhere.
    /// </summary>
    public sealed record ProcessExited(int? ExitCode, string? SessionId, string Reason, string? TurnReported = null, string? SentTurn = null);
}
