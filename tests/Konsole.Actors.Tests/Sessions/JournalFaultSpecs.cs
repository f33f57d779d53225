using System.Text.Json;
using Akka.Actor;
using Konsole.Actors.Prompts;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>A session whose journal write fails: its prompt ends with an error, and the session comes back from its journal.</summary>
public sealed class JournalFaultSpecs(ITestOutputHelper output) : SessionSpec(output, accounts: 1, FailingJournal.Config)
{
    [Fact]
    public async Task A_failed_journal_write_ends_the_prompt_with_journal_unavailable_and_the_session_comes_back()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        await PromptAsync(session, "Remember 42");

        FailingJournal.FailWritesOf($"session-{session}");
        var failed = await PromptAsync(session, "this one is not on record");
        Assert.True(FailingJournal.Heal($"session-{session}") > 0);

        Assert.Equal("error", failed[^1].Type);
        Assert.Equal(TurnErrorCodes.JournalUnavailable, JsonDocument.Parse(failed[^1].Data).RootElement.GetProperty("code").GetString());
        Assert.Single(failed, e => e.EndsPrompt);
        // Back from its journal: still open, its conversation intact, and the prompt that failed never ran.
        SessionInfo? info = null;
        await AwaitAssertAsync(async () => info = await _sessions.Ask<SessionInfo>(new GetSession(session), Ask), TurnTimeout);
        Assert.Equal(1, info!.Turns);
        var next = await PromptAsync(session, "What number?");
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(next));
    }

    [Fact]
    public async Task While_a_session_starts_again_its_messages_are_refused_as_unavailable_not_unknown()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        FailingJournal.FailWritesOf($"session-{session}");
        await PromptAsync(session, "fails");

        // It told its manager before its prompt heard of the fault, so the question is answered, not lost on a stopping
        // actor: refused as restarting, or (once its backoff has passed) by the session itself; never "not found".
        var reply = await _sessions.Ask<object>(new GetSession(session), Ask);
        FailingJournal.Heal($"session-{session}");
        Assert.True(reply is SessionRejected { Code: SessionErrorCodes.Unavailable } or SessionInfo, $"got {reply}");
        await AwaitAssertAsync(async () => await _sessions.Ask<SessionInfo>(new GetSession(session), Ask), TurnTimeout);
    }
}
