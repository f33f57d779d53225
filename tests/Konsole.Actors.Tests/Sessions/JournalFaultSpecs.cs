using System.Text.Json;
using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>
/// Journal writes failing, as a database that times out does: a session's (its prompt ends with an error, and the session
/// comes back from its journal), the session registry's and the roles'. One class: the registry's and the roles' persistence
/// ids are the same in every actor system, so tests failing them must not run side by side.
/// </summary>
public sealed class JournalFaultSpecs(ITestOutputHelper output)
    : SessionSpec(output, accounts: 2, FailingJournal.Config + HoldingSnapshotStore.Config)
{
    private const string Roles = "konsole-roles";
    private const string Registry = "konsole-sessions";

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        FailingJournal.HealAll();
        HoldingSnapshotStore.ReleaseAll();
    }

    [Fact]
    public async Task A_host_stopping_while_its_roles_journal_waits_to_start_again_records_the_roles_first()
    {
        await StartAsync();
        var warnings = EventsOf(typeof(Akka.Event.Warning));
        FailingJournal.FailWritesOf(Roles, once: true); // the database back at once: the next write would land
        await _router.Ask<RolesChanged>(SwapRoles.Instance, Ask);
        await warnings.FishForMessageAsync(m => m is Akka.Event.Warning w && $"{w.Message}".StartsWith("The roles' journal stopped"), TurnTimeout);

        // Most often within the journal's backoff (200 ms): the router starts it at once, and stops once it has written.
        await _router.GracefulStop(Ask, StopRouter.Instance); // as the host stops it
        await _sessions.GracefulStop(Ask);
        await RestartAsync();

        Assert.Equal(new RoleAssignment("beta", "alpha"), (await AccountsAsync()).Roles);
    }

    [Fact]
    public async Task A_failed_roles_write_stops_no_routing_and_the_roles_are_recorded_once_the_journal_writes_again()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        FailingJournal.FailWritesOf(Roles);

        await _router.Ask<RolesChanged>(SwapRoles.Instance, Ask);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.Failures(Roles) > 0), TurnTimeout);
        var during = await PromptAsync(session, "on the new dashboard [[env:CLAUDE_CONFIG_DIR]]");
        var writes = FailingJournal.Writes(Roles);
        FailingJournal.Heal(Roles);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.Writes(Roles) > writes), TurnTimeout);
        await CrashAsync();
        await RestartAsync();

        Assert.Contains(Sandbox.Accounts[1].ConfigDir, ResultText(during)); // beta, dashboard since the swap
        Assert.Equal(new RoleAssignment("beta", "alpha"), (await AccountsAsync()).Roles);
    }

    [Fact]
    public async Task A_registry_started_again_that_cannot_read_its_journal_back_stops_alone_not_the_host()
    {
        await StartAsync();
        var kept = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        FailingJournal.FailWritesOf(Registry);
        FailingJournal.FailReadsOf(Registry); // as a database that went down

        var refused = await _sessions.Ask<SessionRejected>(new CreateSession(SessionType.Full), Ask);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.ReadFailures(Registry) > 0), TurnTimeout); // a new registry tried
        var served = await PromptAsync(kept, "still served");
        var meanwhile = await _sessions.Ask<Readiness>(SessionProtocol.GetReadiness.Instance, Ask);
        FailingJournal.Heal(Registry);
        SessionInfo? opened = null;
        await AwaitAssertAsync(async () => opened = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Ask), TurnTimeout);

        Assert.Equal(SessionErrorCodes.Unavailable, refused.Code);
        Assert.Equal("the session registry's journal failed: until a registry has read it back, new sessions are refused or wait", meanwhile.Waiting);
        Assert.Null((await _sessions.Ask<Readiness>(SessionProtocol.GetReadiness.Instance, Ask)).Waiting); // it opened one: back
        Assert.StartsWith("echo: still served", ResultText(served));
        Assert.NotNull(opened);
        Assert.False(Sys.WhenTerminated.IsCompleted, "the host stopped");
    }

    [Fact]
    public async Task A_router_restarted_after_a_fault_that_cannot_read_the_roles_back_keeps_the_host_running()
    {
        await StartAsync();
        FailingJournal.FailReadsOf(Roles); // as a database that went down

        _router.Tell(new RouteWorkerPrompt(null!)); // as a bug would: the router throws, and is restarted
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.ReadFailures(Roles) > 0), TurnTimeout);
        var meanwhile = await _router.Ask<Readiness>(RoleRouterProtocol.GetReadiness.Instance, Ask); // answered at once, not stashed
        FailingJournal.Heal(Roles);

        Assert.Equal("the roles are being read back from the journal", meanwhile.Waiting);
        await AwaitAssertAsync(async () => Assert.Null((await _router.Ask<Readiness>(RoleRouterProtocol.GetReadiness.Instance, Ask)).Waiting), TurnTimeout);
        Assert.StartsWith("echo: served", ResultText(await PromptAsync((await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId, "served")));
        Assert.False(Sys.WhenTerminated.IsCompleted, "the host stopped");
    }

    [Fact]
    public async Task A_drain_while_the_roles_are_read_back_refuses_the_prompts_routed_once_they_are_back()
    {
        await StartAsync();
        FailingJournal.FailReadsOf(Roles);
        _router.Tell(new RouteWorkerPrompt(null!)); // as a bug would: the router throws, and is restarted
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.ReadFailures(Roles) > 0), TurnTimeout);
        var waiting = NewPrompt("routed once the roles are back");

        _router.Tell(new RoutePrompt(Role.Dashboard, waiting.Prompt)); // waits for the roles
        _router.Tell(new DrainAccounts(TimeSpan.FromSeconds(30))); // the host stops meanwhile: handled at once
        var work = await _router.Ask<WorkInProgress>(GetWorkInProgress.Instance, Ask); // what the drain waits for: answered at once
        var readiness = await _router.Ask<Readiness>(RoleRouterProtocol.GetReadiness.Instance, Ask);
        FailingJournal.Heal(Roles);

        Assert.Equal(new WorkInProgress(0, 0), work);
        Assert.Equal("the roles are being read back from the journal", readiness.Waiting);
        var refused = await waiting.Caller.FishForMessageAsync<TurnFailed>(_ => true, TurnTimeout);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, refused.Code);
        Assert.Equal("the host is shutting down", refused.Message);
    }

    [Fact]
    public async Task A_session_manager_restarted_after_a_fault_that_cannot_read_the_registry_back_keeps_the_host_running()
    {
        await StartAsync();
        var kept = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        FailingJournal.FailReadsOf(Registry);

        _sessions.Tell(new SubmitPrompt(null!, "x")); // as a bug would: the manager throws, and is restarted
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.ReadFailures(Registry) > 0), TurnTimeout);
        var meanwhile = await _sessions.Ask<Readiness>(SessionProtocol.GetReadiness.Instance, Ask); // answered at once, not stashed
        FailingJournal.Heal(Registry);

        Assert.Equal("the sessions are being read back from the journal", meanwhile.Waiting);
        await AwaitAssertAsync(async () => Assert.Null((await _sessions.Ask<Readiness>(SessionProtocol.GetReadiness.Instance, Ask)).Waiting), TurnTimeout);
        Assert.StartsWith("echo: still there", ResultText(await PromptAsync(kept, "still there")));
        Assert.False(Sys.WhenTerminated.IsCompleted, "the host stopped");
    }

    [Fact]
    public async Task A_failed_registry_write_refuses_that_opening_stops_no_session_and_the_registry_catches_up()
    {
        await StartAsync();
        var kept = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var closed = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Ask)).SessionId;
        FailingJournal.FailWritesOf(Registry);

        var refused = await _sessions.Ask<SessionRejected>(new CreateSession(SessionType.Full, "ui-refused"), Ask);
        var served = await PromptAsync(kept, "still served");
        var closing = _sessions.Ask<SessionClosed>(new CloseSession(closed), Ask); // answered once it is on record
        FailingJournal.Heal(Registry);
        await closing;
        var opened = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "ui-refused"), Ask);
        await CrashAsync();
        await RestartAsync();

        Assert.Equal(SessionErrorCodes.Unavailable, refused.Code);
        Assert.StartsWith("echo: still served", ResultText(served));
        Assert.Equal("ui-refused", opened.SessionId);
        Assert.Equal(1, (await _sessions.Ask<SessionInfo>(new GetSession(kept), Ask)).Turns);
        Assert.Equal(SessionType.Full, (await _sessions.Ask<SessionInfo>(new GetSession("ui-refused"), Ask)).Type);
        Assert.Equal(SessionErrorCodes.Closed, (await _sessions.Ask<SessionRejected>(new SubmitPrompt(closed, "hello"), Ask)).Code);
    }

    [Fact]
    public async Task A_session_named_as_the_registrys_restart_and_the_registry_both_start_again_after_faults_at_once()
    {
        await StartAsync();
        const string session = "RestartRegistry"; // the name the registry's restart timer had
        const string persistenceId = $"session-{session}";
        await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, session), Ask);
        // The session stops on a fault, and cannot read its journal back for a while: it starts again and again, with backoff.
        FailingJournal.FailWritesOf(persistenceId);
        FailingJournal.FailReadsOf(persistenceId);
        await PromptAsync(session, "not on record");
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.ReadFailures(persistenceId) > 0), TurnTimeout);

        await StopTheRegistryAsync(); // meanwhile, the registry stops on a fault too, to start again after its own backoff
        FailingJournal.Heal(Registry);
        FailingJournal.Heal(persistenceId);

        // Both start again. Before: the later of the two restarts, under one timer name, cancelled the other: the registry never
        // came back (every new session refused for good) or the session did not (every request of it refused for good).
        await AwaitAssertAsync(async () => await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask), TurnTimeout);
        await AwaitAssertAsync(async () => await _sessions.Ask<SessionInfo>(new GetSession(session), Ask), TurnTimeout);
    }

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
    public async Task A_worker_sessions_prompts_accepted_but_not_dispatched_run_once_in_order_after_its_journal_failed_before_later_ones()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, $"{Long} running"), Ask);
        await FirstAsync(running, "assistant");
        var first = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, "first"), Ask);
        await FirstAsync(first, "queued"); // on record, queued on its account behind the running one
        var second = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, "second"), Ask);
        await FirstAsync(second, "queued");

        FailingJournal.FailWritesOf($"session-{session}");
        var failing = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, "not on record"), Ask);
        await failing.Events.ReadToEndAsync(TurnTimeout);
        Assert.True(FailingJournal.Heal($"session-{session}") > 0);

        // Back from its journal, it routes the queued prompts again under their ids; the router heard those ids interrupted (the
        // session, as it stopped, interrupted what it had sent): the interrupts were for the prompts sent before, not these.
        EventsFollowed? followed = null;
        await AwaitAssertAsync(async () => followed = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask), TurnTimeout);
        foreach (var prompt in new[] { first, second })
        {
            var ended = await EndOfAsync(followed!, prompt.PromptId);
            Assert.True(ended.Type == "result", $"it ended with {ended.Type}: {ended.Text}");
        }
        var later = ResultText(await PromptAsync(session, "later"))!;
        Assert.Equal((1, 1), (CountOf("first", later), CountOf("second", later))); // each ran once: its conversation has it once
        Assert.EndsWith("first | second]", later); // in order, and the later prompt after them
    }

    [Fact]
    public async Task A_session_whose_journal_fails_as_it_confirms_a_dispatch_interrupts_that_prompt_without_confirming_it()
    {
        // The session alone, a probe as its router and one as its account: its account drops a prompt interrupted while it
        // waits for the confirmation at once (see AccountActorSpecs), not after the confirmation timeout.
        const string session = "confirming";
        var (actor, router) = Alone(session);
        var account = CreateTestProbe();
        var waiting = await actor.Ask<PromptAccepted>(new SubmitPrompt(session, "waiting"), Ask);
        account.Send(actor, new PromptQueued(waiting.PromptId, "alpha", 1));
        await FirstAsync(waiting, "queued"); // on record
        FailingJournal.FailWritesOf($"session-{session}");

        account.Send(actor, new DispatchRequested(waiting.PromptId, "alpha"));

        await ExpectTerminatedAsync(actor, TurnTimeout);
        FailingJournal.Heal($"session-{session}");
        await router.FishForMessageAsync<RoleRouterProtocol.InterruptPrompt>(m => m.PromptId == waiting.PromptId && actor.Equals(m.Caller), Ask);
        Assert.False(account.HasMessages, "the dispatch was confirmed");
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

    [Fact]
    public async Task Commands_that_waited_for_a_journal_write_that_failed_are_answered_at_once_not_left_to_their_timeout()
    {
        await StartAsync();
        const string session = "stashed";
        // Its first ids' reservation, written before it takes any command, waits: what comes for it waits with it (Akka's stash).
        FailingJournal.HoldEventIdReservationsOf($"session-{session}");
        var created = _sessions.Ask<object>(new CreateSession(SessionType.Full, session), Ask);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.HeldWrites($"session-{session}") > 0), TurnTimeout);
        var prompted = _sessions.Ask<object>(new SubmitPrompt(session, "waits"), Ask);
        var asked = _sessions.Ask<object>(new GetSession(session), Ask);

        FailingJournal.FailHeld($"session-{session}"); // the session stops, and starts again from its journal

        // Each answered as one sent now, while the session starts again: unavailable (the prompt is on no record, and never runs).
        foreach (var reply in await Task.WhenAll(created, prompted, asked))
            Assert.True(reply is SessionRejected { Code: SessionErrorCodes.Unavailable }, $"got {reply}");
        await AwaitAssertAsync(async () => await _sessions.Ask<SessionInfo>(new GetSession(session), Ask), TurnTimeout);
        var back = await PromptAsync(session, "back");
        Assert.Equal("echo: back", ResultText(back));
    }

    [Fact]
    public async Task A_client_of_the_session_before_its_restart_that_leaves_ends_no_stream_of_the_session_started_again()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var before = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        FailingJournal.FailWritesOf($"session-{session}");
        await PromptAsync(session, "fails"); // the session stops on the fault, and starts again from its journal
        FailingJournal.Heal($"session-{session}");
        EventsFollowed? after = null;
        await AwaitAssertAsync(async () => after = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask), TurnTimeout);

        _sessions.Tell(new Unfollow(session, before.SubscriptionId)); // the earlier client's stream ends (its connection dropped)
        await _sessions.Ask<SessionInfo>(new GetSession(session), Ask); // handed on after the Unfollow

        Assert.False(after!.Events.Completion.IsCompleted, "the stream of the session started again was ended by the earlier client's leaving");
    }

    [Fact]
    public async Task A_close_is_answered_once_on_record_and_a_host_killed_before_that_finds_the_session_open_with_its_conversation()
    {
        await StartAsync();
        var kept = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "kept"), Ask)).SessionId;
        var closed = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "closed"), Ask)).SessionId;
        await PromptAsync(kept, "Remember 42");
        await StopTheRegistryAsync();

        var unanswered = CreateTestProbe();
        _sessions.Tell(new CloseSession(kept), unanswered.Ref);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.Failures(Registry) > 1), TurnTimeout); // the close's write failed
        var answered = _sessions.Ask<SessionClosed>(new CloseSession(closed), Ask);
        var writes = FailingJournal.Writes(Registry);
        FailingJournal.Heal(Registry);
        await answered;
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.Writes(Registry) > writes), TurnTimeout);
        await unanswered.ExpectMsgAsync<SessionClosed>(TurnTimeout); // both closes caught up with
        await CrashAsync();
        await RestartAsync();

        Assert.Equal(SessionErrorCodes.Closed, (await _sessions.Ask<SessionRejected>(new GetSession(kept), Ask)).Code);
        Assert.Equal(SessionErrorCodes.Closed, (await _sessions.Ask<SessionRejected>(new GetSession(closed), Ask)).Code);
    }

    [Fact]
    public async Task A_session_that_stops_on_a_fault_while_its_close_waits_to_be_recorded_is_closed_without_it_and_its_process_stops()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker, "worker-x"), Ask)).SessionId;
        await PromptAsync(session, "work");
        Assert.Contains(WorkerProcesses(await AccountsAsync()), p => p.WorkerSessionId == session);
        await StopTheRegistryAsync();

        var asker = CreateTestProbe();
        _sessions.Tell(new CloseSession(session), asker.Ref);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.Failures(Registry) > 1), TurnTimeout); // the close's write failed
        // As a journal write of its own failing, or a fault in a handler.
        Sys.Stop(await Sys.ActorSelection(_sessions.Path / $"session-{session}").ResolveOne(Ask));
        FailingJournal.Heal(Registry);

        await asker.ExpectMsgAsync<SessionClosed>(TurnTimeout); // before: never answered (the close went to the stopped actor)
        await AwaitAssertAsync(async () => Assert.DoesNotContain(WorkerProcesses(await AccountsAsync()), p => p.WorkerSessionId == session),
            TurnTimeout); // before: its CLI ran on until the host stopped
        Assert.Equal(SessionErrorCodes.Closed, (await _sessions.Ask<SessionRejected>(new GetSession(session), Ask)).Code);
    }

    private static IEnumerable<Konsole.Actors.Accounts.AccountProtocol.ProcessStatus> WorkerProcesses(AccountsView view) =>
        view.Accounts.SelectMany(a => a.Status.Processes).Where(p => p is { Mode: ProcessMode.Worker, ProcessId: not null });

    [Fact]
    public async Task A_close_the_host_was_killed_before_recording_was_never_answered_and_the_session_is_back_whole()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "doomed"), Ask)).SessionId;
        await PromptAsync(session, "Remember 42");
        await StopTheRegistryAsync();

        var asker = CreateTestProbe();
        _sessions.Tell(new CloseSession(session), asker.Ref);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.Failures(Registry) > 1), TurnTimeout);
        await CrashAsync(); // the host is killed before the journal writes again
        FailingJournal.Heal(Registry);
        await RestartAsync();

        Assert.False(asker.HasMessages, "the client was told it closed"); // (it was not: before, it was, and its journal deleted)
        Assert.Equal(1, (await _sessions.Ask<SessionInfo>(new GetSession(session), Ask)).Turns);
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(await PromptAsync(session, "What number?")));
    }

    [Fact]
    public async Task Event_ids_after_a_restart_go_on_above_those_handed_out_while_their_reservation_was_on_its_way()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "ids"), Ask)).SessionId;
        FailingJournal.LoseEventIdReservationsOf($"session-{session}"); // what it writes ahead now never lands...

        var busy = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, $"{Long} busy"), Ask);
        var seen = await FirstAsync(busy, "assistant"); // ...as a client reads its first events
        await CrashAsync(); // ...and the host is killed
        FailingJournal.Heal($"session-{session}");
        await RestartAsync();

        var followed = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        using var cancel = new CancellationTokenSource(TurnTimeout);
        var interrupted = await followed.Events.ReadAsync(cancel.Token);
        Assert.Equal("error", interrupted.Type);
        Assert.True(interrupted.Id > seen.Id, $"the interrupted prompt's error is #{interrupted.Id}; a client saw #{seen.Id} before the restart");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // its first restart cannot read its journal back (the database still down): the next one's ids were reused
    public async Task Event_ids_after_a_session_restarts_on_a_failed_reservation_go_on_above_those_handed_out_ahead_of_it(bool readBackFailsFirst)
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full, "ahead"), Ask)).SessionId;
        FailingJournal.HoldEventIdReservationsOf($"session-{session}"); // the next block's write (at #500) waits...

        var prompt = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, "[[chunks:1200:0]] many"), Ask);
        using var cancel = new CancellationTokenSource(TurnTimeout);
        var seen = await prompt.Events.ReadAsync(cancel.Token);
        while (seen.Id < 1000) // ...while the block on record (1 to 1000) is handed out; the events after it wait for the write
            seen = await prompt.Events.ReadAsync(cancel.Token);
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.HeldWrites($"session-{session}") > 0), TurnTimeout);
        if (readBackFailsFirst)
            FailingJournal.FailReadsOf($"session-{session}");
        FailingJournal.FailHeld($"session-{session}");
        var rest = await prompt.Events.ReadToEndAsync(TurnTimeout);
        var lastSeen = rest.Count > 0 ? rest[^1].Id : seen.Id;
        if (readBackFailsFirst)
        {
            await AwaitConditionAsync(() => Task.FromResult(FailingJournal.ReadFailures($"session-{session}") > 0), TurnTimeout);
            FailingJournal.Heal($"session-{session}");
        }

        // Started again from its journal (after a backoff), its events go on above what the client saw.
        EventsFollowed? followed = null;
        await AwaitAssertAsync(async () => followed = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask), TurnTimeout);
        var next = await followed!.Events.ReadAsync(cancel.Token); // the cut prompt, reported interrupted
        Output!.WriteLine($"the client saw #{seen.Id} before the fault, #{lastSeen} last; the restarted session's first event is #{next.Id}");
        Assert.True(next.Id > lastSeen, $"after the restart the session's first event is #{next.Id}; the client saw #{lastSeen}");
    }

    [Fact]
    public async Task A_prompt_told_it_does_not_start_before_it_was_on_record_is_recorded_first_and_runs_after_the_restart()
    {
        // The session alone, a probe as its router, which keeps the prompt (as it keeps a moving worker's): it is never queued.
        const string session = "kept";
        var (actor, router) = Alone(session);
        var kept = await actor.Ask<PromptAccepted>(new SubmitPrompt(session, "kept by the router"), Ask);
        await router.FishForMessageAsync<RoutePrompt>(r => r.Prompt.PromptId == kept.PromptId, Ask);

        router.Send(actor, new PromptNotStarted(kept.PromptId)); // the host stops: the router leaves it for the restart

        await Assert.ThrowsAsync<PromptNotStartedException>(() => kept.Events.ReadToEndAsync(TurnTimeout)); // "it runs after the restart"
        Sys.Stop(actor);
        await ExpectTerminatedAsync(actor, TurnTimeout);
        var (_, nextRouter) = Alone(session);
        // It does: before, it was on no record, so after the restart it was gone without an end.
        Assert.Equal(kept.PromptId, (await nextRouter.FishForMessageAsync<RoutePrompt>(_ => true, TurnTimeout)).Prompt.PromptId);
    }

    [Fact]
    public async Task A_dispatched_prompt_told_it_does_not_start_ends_interrupted_at_once_and_is_not_reported_again_after_the_restart()
    {
        // Its account put it back (its process restarting on its conversation when the drain's deadline passed) after its session
        // had recorded it dispatched: after the restart it would be reported interrupted, not run.
        const string session = "put-back";
        var (actor, _) = Alone(session);
        var account = CreateTestProbe();
        var put = await actor.Ask<PromptAccepted>(new SubmitPrompt(session, "put back"), Ask);
        account.Send(actor, new DispatchRequested(put.PromptId, "alpha"));
        await account.ExpectMsgAsync<DispatchConfirmed>(Ask);

        account.Send(actor, new PromptNotStarted(put.PromptId));

        // Before: nothing, its stream open until the web server's shutdown timeout cut it.
        var events = await put.Events.ReadToEndAsync(TurnTimeout);
        var error = JsonDocument.Parse(events[^1].Data).RootElement;
        Assert.Equal(("error", TurnErrorCodes.Interrupted), (events[^1].Type, error.GetProperty("code").GetString()));
        Assert.Contains("send it again", error.GetProperty("message").GetString());
        Sys.Stop(actor);
        await ExpectTerminatedAsync(actor, TurnTimeout);
        var (back, nextRouter) = Alone(session);
        Assert.Equal("idle", (await back.Ask<SessionInfo>(new GetSession(session), Ask)).State);
        var followed = await back.Ask<EventsFollowed>(new FollowEvents(session, After: events[^1].Id), Ask);
        Assert.False(followed.Events.TryRead(out var again), $"after the restart: {again?.Type} {again?.Text}");
        Assert.False(nextRouter.HasMessages, "the restarted session routed a prompt");
    }

    [Fact]
    public async Task A_worker_place_told_to_a_closing_session_leaves_nothing_of_it_in_the_journal()
    {
        const string session = "closing-worker";
        var (actor, router) = Alone(session, SessionType.Worker);
        await router.ExpectMsgAsync<AssignWorker>(Ask);

        actor.Tell(new CloseSession(session));
        router.Send(actor, new WorkerAssigned(session, "beta")); // a move's answer, crossing the close
        await ExpectMsgAsync<SessionClosed>(Ask);
        await ExpectTerminatedAsync(actor, TurnTimeout); // its journal deleted

        // A session given that id later (once it is no longer kept among the closed) starts from nothing.
        var (_, nextRouter) = Alone(session, SessionType.Worker);
        Assert.Null((await nextRouter.ExpectMsgAsync<AssignWorker>(Ask)).PreferredAccountId); // was beta: a row written after the delete
    }

    [Fact]
    public async Task A_trim_of_its_journal_answered_while_it_closes_does_not_stop_it_before_its_own_delete()
    {
        const string session = "closing-trimmed";
        const string persistenceId = $"session-{session}";
        var (actor, running) = await StreamingAsync(session);
        FailingJournal.HoldEventIdReservationsOf(persistenceId);
        await OutputsAsync(actor, running, 600); // its next id block's write, sent at #500, waits
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.HeldWrites(persistenceId) > 0), TurnTimeout);

        actor.Tell(new CloseSession(session)); // its journal's delete waits for that write
        await ExpectMsgAsync<SessionClosed>(Ask);
        actor.Tell(new DeleteMessagesSuccess(1)); // the answer to a trim after a snapshot, arriving then
        FailingJournal.ReleaseHeld(persistenceId);
        await ExpectTerminatedAsync(actor, TurnTimeout);

        // Its journal went with it: a session given that id later (once it is no longer kept among the closed) starts from nothing.
        var back = Sys.ActorOf(SessionActor.Props(session, SessionType.Full, CreateTestProbe().Ref, replayBuffer: 2000));
        Assert.Equal(0, (await back.Ask<SessionInfo>(new GetSession(session), Ask)).LastEventId); // was 1500: its rows stayed
    }

    [Fact]
    public async Task A_snapshot_still_being_saved_when_it_closes_goes_with_its_journal()
    {
        const string session = "closing-snapshotted";
        const string persistenceId = $"session-{session}";
        var (actor, _) = Alone(session);
        HoldingSnapshotStore.HoldSavesOf(persistenceId);

        // Journal entries: #1 its first id block, then two for each prompt (accepted, ended): at the 100th prompt's acceptance,
        // #200, a snapshot is taken, its save held.
        await EndedPromptsAsync(actor, session, CreateTestProbe(), 100);
        await AwaitConditionAsync(() => Task.FromResult(HoldingSnapshotStore.HeldSaves(persistenceId) > 0), TurnTimeout);

        actor.Tell(new CloseSession(session));
        await ExpectMsgAsync<SessionClosed>(Ask);
        // Whatever the store was sent as it closed, it has run (a request after them, answered), before the save lands.
        await Persistence.Instance.Apply(Sys).SnapshotStoreFor(null)
            .Ask<LoadSnapshotResult>(new LoadSnapshot(persistenceId, SnapshotSelectionCriteria.Latest, long.MaxValue), Ask);
        HoldingSnapshotStore.Release(persistenceId);
        await AwaitConditionAsync(() => Task.FromResult(HoldingSnapshotStore.HeldSavesMade(persistenceId) == 1), TurnTimeout);
        await ExpectTerminatedAsync(actor, TurnTimeout);

        // A session given that id later starts from nothing: before, from the snapshot saved after its delete (its ids above 1000).
        var (back, _) = Alone(session);
        Assert.Equal(0, (await back.Ask<SessionInfo>(new GetSession(session), Ask)).LastEventId);
    }

    [Fact]
    public async Task A_prompt_whose_acceptance_failed_while_a_snapshot_was_taken_does_not_run_after_a_restart()
    {
        // The session alone, a probe as its router and one as its account: which of its writes lands when is the test's.
        const string session = "snapped";
        const string persistenceId = $"session-{session}";
        var (actor, router) = Alone(session);
        var account = CreateTestProbe();

        // Journal entries: #1 its first id block, then two for each of 98 prompts (accepted, ended) up to #197...
        await EndedPromptsAsync(actor, session, account, 98);
        // ...#198-199 a running prompt's acceptance and dispatch...
        var running = await actor.Ask<PromptAccepted>(new SubmitPrompt(session, "running"), Ask);
        account.Send(actor, new DispatchRequested(running.PromptId, "alpha"));
        await account.ExpectMsgAsync<DispatchConfirmed>(Ask);
        // ...and #200 the next id block, written ahead once it has streamed past event #500, held.
        FailingJournal.HoldEventIdReservationsOf(persistenceId);
        var frame = StreamJsonParser.Parse("""{"type":"assistant"}"""u8.ToArray())!;
        for (var i = 0; i < 400; i++)
            account.Send(actor, new TurnOutput(running.PromptId, frame));
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.HeldWrites(persistenceId) > 0), TurnTimeout);

        // A prompt is accepted (#201) while #200 is on its way; #200 lands (a snapshot is taken), then #201 fails.
        var refused = await actor.Ask<PromptAccepted>(new SubmitPrompt(session, "refused"), Ask);
        FailingJournal.FailWritesOf(persistenceId);
        account.Send(actor, new PromptQueued(refused.PromptId, "alpha", 1));
        FailingJournal.ReleaseHeld(persistenceId);

        var events = await refused.Events.ReadToEndAsync(TurnTimeout);
        Assert.Equal(TurnErrorCodes.JournalUnavailable, JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("code").GetString());
        await ExpectTerminatedAsync(actor, TurnTimeout);
        FailingJournal.Heal(persistenceId);
        var snapshot = await Persistence.Instance.Apply(Sys).SnapshotStoreFor(null)
            .Ask<LoadSnapshotResult>(new LoadSnapshot(persistenceId, SnapshotSelectionCriteria.Latest, long.MaxValue), Ask);
        Assert.Equal(200, snapshot.Snapshot?.Metadata.SequenceNr);

        // Started again from its snapshot and journal: the running prompt is reported interrupted, the refused one never runs.
        var (back, nextRouter) = Alone(session);
        var info = await back.Ask<SessionInfo>(new GetSession(session), Ask);
        Assert.Equal("idle", info.State); // before: busy, the refused prompt routed again from the snapshot
        Assert.False(nextRouter.HasMessages, "the restarted session routed a prompt");
    }

    [Fact]
    public async Task Event_ids_handed_out_while_their_reservation_is_stalled_are_not_handed_out_again_after_a_host_kill()
    {
        const string session = "stalled";
        const string persistenceId = $"session-{session}";
        var (actor, running) = await StreamingAsync(session);

        // Ids 1 to 1000 are on record; the next block's write (at #500) waits while 1,200 events stream.
        FailingJournal.HoldEventIdReservationsOf(persistenceId);
        await OutputsAsync(actor, running, 1200);
        // The session sent the write as it took #500; the journal actor takes it up on its own time.
        await AwaitConditionAsync(() => Task.FromResult(FailingJournal.HeldWrites(persistenceId) > 0), TurnTimeout);
        Assert.Equal(1, FailingJournal.HeldWrites(persistenceId));
        var seen = 0L;
        while (running.Events.TryRead(out var item))
            seen = item.Id;

        // The host is killed before the write lands: the journal never gets it.
        Sys.Stop(actor);
        await ExpectTerminatedAsync(actor, TurnTimeout);
        FailingJournal.FailHeld(persistenceId);

        var back = Sys.ActorOf(SessionActor.Props(session, SessionType.Full, CreateTestProbe().Ref, replayBuffer: 2000));
        var followed = await back.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        using var cancel = new CancellationTokenSource(TurnTimeout);
        var next = await followed.Events.ReadAsync(cancel.Token); // the cut prompt, reported interrupted
        Assert.Equal("error", next.Type);
        Assert.True(next.Id > seen, $"after the restart the session's first event is #{next.Id}; a client saw #{seen} before it");
    }

    [Fact]
    public async Task Events_waiting_for_a_stalled_reservation_go_out_in_order_none_missing_once_it_lands()
    {
        const string session = "waiting";
        const string persistenceId = $"session-{session}";
        var (actor, running) = await StreamingAsync(session);

        FailingJournal.HoldEventIdReservationsOf(persistenceId);
        await OutputsAsync(actor, running, 1200);
        var follower = await actor.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        actor.Tell(new TurnCompleted(running.PromptId, StreamJsonParser.Parse("""{"type":"result","result":"done"}"""u8.ToArray())!, null, "alpha"));
        FailingJournal.ReleaseHeld(persistenceId);

        var events = await running.Events.ReadToEndAsync(TurnTimeout);
        var all = new List<SessionEvent>();
        using var cancel = new CancellationTokenSource(TurnTimeout);
        while (all.Count < 1201)
            all.Add(await follower.Events.ReadAsync(cancel.Token));
        Assert.Equal(Enumerable.Range(1, 1201).Select(i => (long)i), events.Select(e => e.Id));
        Assert.Equal(events.Select(e => e.Id), all.Select(e => e.Id));
        Assert.Equal("result", events[^1].Type);
        Assert.Single(events, e => e.EndsPrompt);
    }

    /// <summary>The session alone (started, or started again from its journal), watched, a probe as its router.</summary>
    private (IActorRef Session, TestProbe Router) Alone(string session, SessionType type = SessionType.Full)
    {
        var router = CreateTestProbe();
        var actor = Sys.ActorOf(SessionActor.Props(session, type, router.Ref, replayBuffer: 100));
        Watch(actor);
        return (actor, router);
    }

    private static async Task<SessionEvent> EndOfAsync(EventsFollowed followed, string promptId)
    {
        using var cancel = new CancellationTokenSource(TurnTimeout);
        while (true)
        {
            var item = await followed.Events.ReadAsync(cancel.Token);
            if (item.PromptId == promptId && item.EndsPrompt)
                return item;
        }
    }

    private static int CountOf(string part, string text) => (text.Length - text.Replace(part, "").Length) / part.Length;

    /// <summary>A session alone, a probe as its router and one as its account, and a prompt of it dispatched: which of its writes lands when is the test's.</summary>
    private async Task<(IActorRef Session, PromptAccepted Running)> StreamingAsync(string session)
    {
        var account = CreateTestProbe();
        var actor = Sys.ActorOf(SessionActor.Props(session, SessionType.Full, CreateTestProbe().Ref, replayBuffer: 2000));
        Watch(actor);
        var running = await actor.Ask<PromptAccepted>(new SubmitPrompt(session, "running"), Ask);
        account.Send(actor, new DispatchRequested(running.PromptId, "alpha"));
        await account.ExpectMsgAsync<DispatchConfirmed>(Ask);
        return (actor, running);
    }

    /// <summary><paramref name="count"/> prompts accepted, queued and ended, one after another: two journal entries each.</summary>
    private static async Task EndedPromptsAsync(IActorRef session, string id, TestProbe account, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var prompt = await session.Ask<PromptAccepted>(new SubmitPrompt(id, $"prompt {i}"), Ask);
            account.Send(session, new PromptQueued(prompt.PromptId, "alpha", 1));
            account.Send(session, new TurnFailed(prompt.PromptId, TurnErrorCodes.Interrupted, "interrupted"));
        }
    }

    /// <summary>The running prompt's CLI writes <paramref name="count"/> lines, and the session has taken each.</summary>
    private static async Task OutputsAsync(IActorRef session, PromptAccepted running, int count)
    {
        var frame = StreamJsonParser.Parse("""{"type":"assistant"}"""u8.ToArray())!;
        for (var i = 0; i < count; i++)
            session.Tell(new TurnOutput(running.PromptId, frame));
        await session.Ask<SessionInfo>(new GetSession(running.SessionId), Ask);
    }

    /// <summary>The registry's writes fail from now on: its next one (a session's opening, refused) stops it.</summary>
    private async Task StopTheRegistryAsync()
    {
        FailingJournal.FailWritesOf(Registry);
        await _sessions.Ask<SessionRejected>(new CreateSession(SessionType.Full), Ask);
    }
}
