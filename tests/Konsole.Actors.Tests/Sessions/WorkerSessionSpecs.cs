using System.Text.Json;
using Akka.Actor;
using Konsole.Actors.Prompts;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>Worker sessions on one account (on FakeClaude): every worker session lands on it.</summary>
public sealed class WorkerSessionSpecs(ITestOutputHelper output) : SessionSpec(output, accounts: 1)
{
    [Fact]
    public async Task A_worker_beyond_max_workers_on_its_account_waits_until_a_worker_session_closes()
    {
        await StartAsync("konsole.sessions.max-workers = 1");
        var a = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var b = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(a, $"{Long} a"), Ask);
        await FirstAsync(running, "assistant");

        var waiting = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(b, "b waits"), Ask);
        var queued = await FirstAsync(waiting, "queued");
        Assert.Equal(1, JsonDocument.Parse(queued.Data).RootElement.GetProperty("position").GetInt32());

        await _sessions.Ask<SessionClosed>(new CloseSession(a), Ask);
        var served = await waiting.Events.ReadToEndAsync(TurnTimeout);
        Assert.Equal("echo: b waits", ResultText(served));
        var account = (await AccountsAsync()).Accounts[0].Status;
        Assert.Equal(b, Assert.Single(account.Processes, p => p.Mode == ProcessMode.Worker).WorkerSessionId);
    }

}
