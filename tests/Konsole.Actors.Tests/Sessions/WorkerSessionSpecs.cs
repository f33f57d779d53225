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

    [Fact]
    public async Task An_idle_worker_gives_its_place_to_a_waiting_one_and_resumes_its_conversation_with_its_next_prompt()
    {
        await StartAsync("konsole.sessions.max-workers = 1");
        var a = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var b = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        Assert.Equal("echo: Remember 42", ResultText(await PromptAsync(a, "Remember 42")));

        Assert.Equal("echo: Remember 7", ResultText(await PromptAsync(b, "Remember 7"))); // a is idle: its process makes way
        Assert.Equal(b, Assert.Single(await RunningWorkersAsync()).WorkerSessionId);
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(await PromptAsync(a, "What number?")));
        Assert.Equal(a, Assert.Single(await RunningWorkersAsync()).WorkerSessionId);
        Assert.Equal("echo: And yours? [history: Remember 7]", ResultText(await PromptAsync(b, "And yours?")));
        Assert.Equal(b, Assert.Single(await RunningWorkersAsync()).WorkerSessionId);
    }

    [Fact]
    public async Task A_busy_worker_keeps_its_place_until_its_turn_ends_then_gives_it_to_the_waiting_one()
    {
        await StartAsync("konsole.sessions.max-workers = 1");
        var a = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var b = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(a, "[[chunks:20:100]] a"), Ask);
        await FirstAsync(running, "assistant");

        var waiting = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(b, "b waits"), Ask);
        await FirstAsync(waiting, "queued");

        Assert.Equal("echo: a", ResultText(await running.Events.ReadToEndAsync(TurnTimeout)));
        Assert.Equal("echo: b waits", ResultText(await waiting.Events.ReadToEndAsync(TurnTimeout)));
        Assert.Equal("echo: a again [history: a]", ResultText(await PromptAsync(a, "a again")));
    }

    [Fact]
    public async Task Waiting_workers_take_a_place_in_the_order_they_began_to_wait_a_parked_one_included()
    {
        await StartAsync("konsole.sessions.max-workers = 1");
        var a = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var b = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var c = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        Assert.Equal("echo: a", ResultText(await PromptAsync(a, "a")));
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(b, "[[chunks:20:100]] b"), Ask); // a is parked
        await FirstAsync(running, "assistant");

        var first = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(c, "[[chunks:20:100]] c waits first"), Ask);
        await FirstAsync(first, "queued");
        var second = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(a, $"{Long} a waits second"), Ask);
        await FirstAsync(second, "queued");

        // b's turn ends: its place goes to c, which began to wait first; a starts only once c's turn has ended.
        var started = await Task.WhenAny(FirstAsync(first, "assistant"), FirstAsync(second, "assistant"));
        Assert.Equal(first.PromptId, (await started).PromptId);
        await _sessions.Ask<SessionInterrupted>(new InterruptSession(a), Ask);
    }

    private async Task<Konsole.Actors.Accounts.AccountProtocol.ProcessStatus[]> RunningWorkersAsync() =>
        (await AccountsAsync()).Accounts[0].Status.Processes.Where(p => p is { Mode: ProcessMode.Worker, ProcessId: not null }).ToArray();
}
