using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Konsole.Actors.Durability;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>
/// What survives the router and the sessions going down without a chance to finish anything (the journal is in memory,
/// shared by both incarnations, as a database is by two runs of the host).
/// </summary>
public sealed class DurabilitySpecs(ITestOutputHelper output) : SessionSpec(output, accounts: 2)
{
    [Fact]
    public async Task Roles_sessions_and_conversations_are_back_after_a_restart()
    {
        await StartAsync();
        await _router.Ask<RolesChanged>(SwapRoles.Instance, Ask);
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var first = await PromptAsync(session, "Remember 42 [[env:CLAUDE_CONFIG_DIR]]");
        var before = await _sessions.Ask<SessionInfo>(new GetSession(session), Ask);

        await CrashAsync();
        await RestartAsync();

        Assert.Equal(new RoleAssignment("beta", "alpha"), (await _router.Ask<AccountsView>(GetAccounts.Instance, Ask)).Roles);
        var after = await _sessions.Ask<SessionInfo>(new GetSession(session), Ask);
        Assert.Equal((before.Type, before.AccountId, before.ClaudeSessionId, 1), (after.Type, after.AccountId, after.ClaudeSessionId, after.Turns));
        Assert.Contains(Sandbox.Accounts[1].ConfigDir, ResultText(first));
        Assert.StartsWith("echo: What number? [history: Remember 42", ResultText(await PromptAsync(session, "What number?")));
    }

    [Fact]
    public async Task Swaps_answered_just_before_the_host_stops_are_all_recorded()
    {
        await StartAsync();
        for (var i = 0; i < 51; i++) // the journal writes one at a time: the others wait behind it as the host stops
            _router.Tell(SwapRoles.Instance);

        await _router.GracefulStop(Ask, StopRouter.Instance); // as the host stops it
        await _sessions.GracefulStop(Ask);
        await RestartAsync();

        Assert.Equal(new RoleAssignment("beta", "alpha"), (await _router.Ask<AccountsView>(GetAccounts.Instance, Ask)).Roles);
    }

    [Fact]
    public async Task Prompts_accepted_but_not_dispatched_run_after_a_restart_in_the_order_they_were_accepted()
    {
        await StartAsync();
        var chat = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat, "ordered"), Ask)).SessionId;
        var other = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat, "other"), Ask)).SessionId;
        // A runs on the quickturn account's chat process, another session's long prompt and then B wait behind it; A ends,
        // and C is accepted after it (it took A's place in the session's table of prompts in flight).
        var a = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(chat, "[[chunks:20:50]] a"), Ask);
        await FirstAsync(a, "assistant");
        var hog = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(other, $"{Long} hog"), Ask);
        await FirstAsync(hog, "queued");
        var b = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(chat, "first"), Ask);
        await FirstAsync(b, "queued");
        await a.Events.ReadToEndAsync(TurnTimeout);
        await FirstAsync(hog, "assistant");
        var c = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(chat, "second"), Ask);
        await FirstAsync(c, "queued");

        await CrashAsync();
        await RestartAsync();

        var followed = await _sessions.Ask<EventsFollowed>(new FollowEvents(chat, After: 0), Ask);
        var results = new List<string>();
        using var cancel = new CancellationTokenSource(TurnTimeout);
        while (results.Count < 2)
        {
            var item = await followed.Events.ReadAsync(cancel.Token);
            if (item.Type == "result")
                results.Add(item.PromptId == b.PromptId ? "B" : item.PromptId == c.PromptId ? "C" : item.PromptId);
        }
        Assert.Equal(["B", "C"], results);
    }

    [Fact]
    public async Task Prompts_run_after_a_restart_on_another_dashboard_continue_one_conversation_each_after_the_other()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "ui-1"), Ask)).SessionId;
        await PromptAsync(session, "Remember 42"); // on alpha
        var other = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "hog"), Ask)).SessionId;
        var hog = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(other, $"{Long} hog"), Ask);
        await FirstAsync(hog, "assistant");
        var b = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, "Remember 7"), Ask);
        await FirstAsync(b, "queued");
        var c = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, "What numbers?"), Ask);
        await FirstAsync(c, "queued");

        await CrashAsync();
        await RestartAsync("konsole.roles { dashboard = beta, quickturn = alpha }"); // both run on beta now

        var followed = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        var results = new Dictionary<string, string>();
        using var cancel = new CancellationTokenSource(TurnTimeout);
        while (results.Count < 2)
        {
            var item = await followed.Events.ReadAsync(cancel.Token);
            if (item.Type == "result")
                results[item.PromptId] = JsonDocument.Parse(item.Data).RootElement.GetProperty("result").GetString()!;
        }
        Assert.Equal("echo: Remember 7 [history: Remember 42]", results[b.PromptId]);
        Assert.Equal("echo: What numbers? [history: Remember 42 | Remember 7]", results[c.PromptId]); // it took up where B left it
    }

    [Fact]
    public async Task A_session_named_like_the_managers_own_children_is_a_session_like_any_other_also_after_a_restart()
    {
        await StartAsync();

        // "registry" took the session registry's actor name: the manager threw at every start, read back after a restart too.
        foreach (var id in (string[])["registry", "quick-x"])
            Assert.StartsWith("echo: hello", ResultText(await PromptAsync((await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, id), Ask)).SessionId, "hello")));
        await CrashAsync();
        await RestartAsync();

        Assert.Equal(1, (await _sessions.Ask<SessionInfo>(new GetSession("registry"), Ask)).Turns);
        Assert.NotNull(await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Ask));
    }

    [Fact]
    public async Task A_swap_stands_over_restarts_until_konsole_roles_is_changed()
    {
        await StartAsync();
        await _router.Ask<RolesChanged>(SwapRoles.Instance, Ask);
        await PromptAsync((await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Ask)).SessionId, "the swap is recorded meanwhile");
        await CrashAsync();

        await RestartAsync();
        var kept = (await _router.Ask<AccountsView>(GetAccounts.Instance, Ask)).Roles;
        await CrashAsync();
        await RestartAsync("konsole.roles { dashboard = \"beta\", quickturn = \"beta\" }");
        var changed = (await _router.Ask<AccountsView>(GetAccounts.Instance, Ask)).Roles;
        await PromptAsync((await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Ask)).SessionId, "the roles are recorded meanwhile");
        await CrashAsync();
        await RestartAsync(); // the configuration the swap was made under, again

        Assert.Equal(new RoleAssignment("beta", "alpha"), kept);
        Assert.Equal(new RoleAssignment("beta", "beta"), changed);
        // The configured roles took over from the swap: it does not come back (before: it did, as nothing had been recorded since).
        Assert.Equal(new RoleAssignment("alpha", "beta"), (await _router.Ask<AccountsView>(GetAccounts.Instance, Ask)).Roles);
    }

    [Fact]
    public async Task After_a_crash_a_prompt_that_never_started_runs_and_the_one_that_was_running_is_reported_interrupted()
    {
        await StartAsync();
        var running = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var waiting = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var busy = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(running, $"{Long} busy"), Ask);
        await FirstAsync(busy, "assistant");
        var queued = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(waiting, "waits its turn"), Ask);
        await FirstAsync(queued, "queued");
        var seen = (await _sessions.Ask<SessionInfo>(new GetSession(running), Ask)).LastEventId;

        await CrashAsync();
        await RestartAsync();

        var interrupted = await _sessions.Ask<EventsFollowed>(new FollowEvents(running, After: 0), Ask);
        var error = await NextAsync(interrupted, "error");
        Assert.True(error.Id > seen, $"event ids go on above those handed out before ({error.Id} <= {seen})");
        Assert.Equal("interrupted", JsonDocument.Parse(error.Data).RootElement.GetProperty("code").GetString());
        Assert.Equal(busy.PromptId, error.PromptId);
        var ran = await _sessions.Ask<EventsFollowed>(new FollowEvents(waiting, After: 0), Ask);
        var result = await NextAsync(ran, "result");
        Assert.Equal((queued.PromptId, "echo: waits its turn"),
            (result.PromptId, JsonDocument.Parse(result.Data).RootElement.GetProperty("result").GetString()));
        Assert.Equal(1, (await _sessions.Ask<SessionInfo>(new GetSession(waiting), Ask)).Turns);
        Assert.Equal("idle", (await _sessions.Ask<SessionInfo>(new GetSession(running), Ask)).State);
    }

    [Fact]
    public async Task A_worker_with_a_conversation_waiting_for_a_place_after_a_restart_moves_to_a_free_one_and_resumes_it()
    {
        const string oneWorker = "konsole.sessions.max-workers = 1";
        await StartAsync(oneWorker);
        var worker = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        Assert.Equal("echo: remember 7", ResultText(await PromptAsync(worker, "remember 7")));
        var home = await AssignedAccountAsync(worker);
        await CrashAsync();
        await RestartAsync(oneWorker);
        Assert.Equal(home, await AssignedAccountAsync(worker));
        var idle = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId; // starts no process
        var free = await AssignedAccountAsync(idle);
        var busy = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        Assert.Equal(home, await AssignedAccountAsync(busy));
        await FirstAsync(await _sessions.Ask<PromptAccepted>(new SubmitPrompt(busy, $"{Long} busy"), Ask), "assistant");

        var after = await PromptAsync(worker, "what number?"); // waited on its home account behind busy's long turn

        Assert.Equal("echo: what number? [history: remember 7]", ResultText(after));
        Assert.Equal(free, (await _sessions.Ask<SessionInfo>(new GetSession(worker), Ask)).AccountId);
    }

    [Fact]
    public async Task A_sessions_model_is_back_after_a_restart_and_its_turns_still_run_on_it()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, Model: "fake-opus"), Ask)).SessionId;
        var other = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        Assert.Equal("fake-opus", ModelOf(await PromptAsync(session, "hello")));

        await CrashAsync();
        await RestartAsync();

        Assert.Equal("fake-opus", (await _sessions.Ask<SessionInfo>(new GetSession(session), Ask)).Model);
        Assert.Equal("fake-claude", ModelOf(await PromptAsync(other, "on the account's model")));
        Assert.Equal("fake-opus", ModelOf(await PromptAsync(session, "again")));
    }

    [Fact]
    public async Task What_comes_for_a_session_while_it_is_being_opened_waits_for_it_instead_of_being_refused()
    {
        await StartAsync();

        _sessions.Tell(new SubmitPrompt("ui-new", "hello", CreateAs: SessionType.Full)); // opens it
        var info = await _sessions.Ask<object>(new GetSession("ui-new"), Ask); // while its record is being written

        Assert.Equal("ui-new", Assert.IsType<SessionInfo>(info).SessionId);
    }

    [Fact]
    public void Records_journaled_before_a_field_was_added_read_back_without_it()
    {
        // A session before sessions had models; a prompt's end before its error was kept.
        Assert.Equal(new SessionRegistered("ui-1", SessionType.Worker), WrittenWithout(new SessionRegistered("ui-1", SessionType.Worker, "fake-opus"), "model"));
        Assert.Equal(new PromptEndRecorded("p-1", Completed: false), WrittenWithout(new PromptEndRecorded("p-1", Completed: false, Error: "turn_timeout"), "error"));
    }

    private object WrittenWithout(IDurableEvent written, string property)
    {
        var serializer = new DurableEventSerializer((ExtendedActorSystem)Sys);
        var old = JsonNode.Parse(serializer.ToBinary(written))!.AsObject();
        Assert.True(old.Remove(property));
        return serializer.FromBinary(JsonSerializer.SerializeToUtf8Bytes(old), serializer.Manifest(written));
    }

    [Fact]
    public async Task Each_prompts_lifecycle_is_on_record_with_how_it_ended()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var completed = (await PromptAsync(session, "hello"))[^1].PromptId;
        var crashed = (await PromptAsync(session, "[[crash]] mid-turn"))[^1].PromptId;
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, $"{Long} cut by the host's end"), Ask);
        await FirstAsync(running, "assistant");
        await CrashAsync();
        await RestartAsync();
        var recovered = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        Assert.Equal(running.PromptId, (await NextAsync(recovered, "error")).PromptId); // its end is on record now

        var reader = CreateTestProbe();
        Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null)
            .Tell(new Akka.Persistence.ReplayMessages(0, long.MaxValue, long.MaxValue, $"session-{session}", reader.Ref));
        var lifecycle = new List<string>();
        while (await reader.ReceiveOneAsync(Ask) is Akka.Persistence.ReplayedMessage { Persistent.Payload: var e })
            lifecycle.AddRange(e switch
            {
                PromptRecorded r => [$"{r.PromptId} accepted"],
                PromptDispatchRecorded d => [$"{d.PromptId} dispatched"],
                PromptEndRecorded { Completed: true } c => [$"{c.PromptId} completed"],
                PromptEndRecorded f => [$"{f.PromptId} {f.Error}"], // was: ended, not completed, and no more
                _ => Array.Empty<string>(),
            });

        Assert.Equal(
            [
                $"{completed} accepted", $"{completed} dispatched", $"{completed} completed",
                $"{crashed} accepted", $"{crashed} dispatched", $"{crashed} process_crashed",
                $"{running.PromptId} accepted", $"{running.PromptId} dispatched", $"{running.PromptId} interrupted",
            ], lifecycle);
    }

    private static string? ModelOf(IReadOnlyList<SessionEvent> events) =>
        JsonDocument.Parse(events.Single(e => e.Type == "system").Data).RootElement.GetProperty("model").GetString();

    [Fact]
    public async Task A_closed_session_stays_closed_after_a_restart()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Ask)).SessionId;
        await _sessions.Ask<SessionClosed>(new CloseSession(session), Ask);

        await CrashAsync();
        await RestartAsync();

        Assert.Equal(SessionErrorCodes.Closed, (await _sessions.Ask<SessionRejected>(new SubmitPrompt(session, "hello"), Ask)).Code);
    }

    private static async Task<SessionEvent> NextAsync(EventsFollowed followed, string type)
    {
        using var cancel = new CancellationTokenSource(TurnTimeout);
        while (true)
        {
            var item = await followed.Events.ReadAsync(cancel.Token);
            if (item.Type == type)
                return item;
        }
    }
}
