using System.Text.Json;
using Akka.Actor;
using Konsole.Actors.Accounts;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>The SessionManager and its sessions over two real accounts (alpha, beta) on FakeClaude.</summary>
public sealed class SessionSpecs(ITestOutputHelper output) : SessionSpec(output, accounts: 2)
{
    [Fact]
    public async Task A_sessions_events_are_numbered_from_1_each_prompt_ends_with_its_result_and_the_conversation_continues()
    {
        await StartAsync();
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);

        var first = await PromptAsync(created.SessionId, "Remember 42");
        var second = await PromptAsync(created.SessionId, "What number?");

        var all = first.Concat(second).ToList();
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Id));
        Assert.All([first, second], events =>
        {
            Assert.Equal("result", events[^1].Type);
            Assert.True(events[^1].EndsPrompt);
            Assert.Single(events, e => e.EndsPrompt);
            Assert.Single(events.Select(e => e.PromptId).Distinct());
        });
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(second));
        var info = await _sessions.Ask<SessionInfo>(new GetSession(created.SessionId), Ask);
        Assert.Equal((SessionType.Full, "alpha", "idle", 2, (long)all.Count), (info.Type, info.AccountId, info.State, info.Turns, info.LastEventId));
        Assert.Equal(JsonDocument.Parse(second[^1].Data).RootElement.GetProperty("session_id").GetString(), info.ClaudeSessionId);
    }

    [Fact]
    public async Task A_sessions_account_is_known_as_soon_as_its_first_prompt_starts_not_only_once_it_ends()
    {
        await StartAsync();
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(created.SessionId, "[[finish-on-interrupt]] hold on"), Ask);

        // It never waited (no queued event) and does not end until interrupted.
        await AwaitAssertAsync(async () => Assert.Equal("alpha", (await _sessions.Ask<SessionInfo>(new GetSession(created.SessionId), Ask)).AccountId),
            TurnTimeout);

        await _sessions.Ask<SessionInterrupted>(new InterruptSession(created.SessionId), Ask);
        Assert.DoesNotContain(await running.Events.ReadToEndAsync(TurnTimeout), e => e.Type == "queued");
    }

    [Fact]
    public async Task Prompts_sent_back_to_back_after_a_swap_continue_one_conversation_each_after_the_other()
    {
        await StartAsync();
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);
        await PromptAsync(created.SessionId, "Remember 42");
        await _router.Ask<RoleRouterProtocol.RolesChanged>(RoleRouterProtocol.SwapRoles.Instance, Ask);

        // Both carry the conversation as it was on alpha; the second must not take it back from there once the first ran on beta.
        var first = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(created.SessionId, "Remember 7"), Ask);
        var second = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(created.SessionId, "What numbers?"), Ask);
        await first.Events.ReadToEndAsync(TurnTimeout);

        Assert.Equal("echo: What numbers? [history: Remember 42 | Remember 7]", ResultText(await second.Events.ReadToEndAsync(TurnTimeout)));
    }

    [Fact]
    public async Task A_session_that_stops_on_a_fault_ends_its_prompts_with_an_error_and_interrupts_their_turns()
    {
        await StartAsync();
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);
        var accepted = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(created.SessionId, $"{Long} busy"), Ask);
        await FirstAsync(accepted, "assistant");
        var session = await Sys.ActorSelection(_sessions.Path / ("session-" + created.SessionId)).ResolveOne(Ask);

        session.Tell(new TurnOutput(accepted.PromptId, null!)); // as a bug would: the session throws, and its parent stops it

        var last = (await accepted.Events.ReadToEndAsync(TurnTimeout))[^1];
        Assert.Equal(("error", true), (last.Type, last.EndsPrompt));
        Assert.Equal(TurnErrorCodes.Interrupted, JsonDocument.Parse(last.Data).RootElement.GetProperty("code").GetString());
        // Its turn (50 s long) was interrupted: the account is idle again.
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Idle,
            (await AccountsAsync()).Accounts.Single(a => a.Status.AccountId == "alpha").Status.State), TurnTimeout);
    }

    [Fact]
    public async Task A_turn_the_watchdog_interrupted_ends_with_its_turn_timeout_error_alone_not_a_result_before_it()
    {
        await StartAsync("konsole.claude { turn-timeout = 5s }"); // FakeClaude takes the prompt before the interrupt, even when loaded
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);

        var events = await PromptAsync(created.SessionId, "[[delay:600000]] waits on something");

        Assert.DoesNotContain(events, e => e.Type == "result");
        Assert.Equal(("error", true), (events[^1].Type, events[^1].EndsPrompt));
        Assert.Equal(TurnErrorCodes.TurnTimeout, JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_follower_whose_replay_filled_its_buffer_is_not_cut_at_the_next_event()
    {
        await StartAsync("konsole.sessions.replay-buffer = 10");
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);
        await PromptAsync(created.SessionId, "[[chunks:20:0]] fill the buffer");

        var followed = await _sessions.Ask<EventsFollowed>(new FollowEvents(created.SessionId, After: 0), Ask); // a full buffer replayed
        await PromptAsync(created.SessionId, "one more");
        using var timeout = new CancellationTokenSource(TurnTimeout);
        var replayed = new List<SessionEvent>();
        for (var i = 0; i < 10; i++)
            replayed.Add(await followed.Events.ReadAsync(timeout.Token));
        var live = await followed.Events.ReadAsync(timeout.Token); // the stream ended here

        Assert.Equal(replayed[^1].Id + 1, live.Id);
    }

    [Fact]
    public async Task A_quick_turns_client_that_leaves_ends_its_subscription_while_the_turn_runs()
    {
        await StartAsync();
        var accepted = await _sessions.Ask<PromptAccepted>(new SubmitQuickTurn($"{Long} a long answer"), Ask); // 50 s of output
        await FirstAsync(accepted, "assistant");

        _sessions.Tell(new Unfollow(accepted.SessionId, accepted.SubscriptionId)); // was dropped: its output piled up to the turn's end

        // What was written before the unfollow is still read (Completion waits for that too), then it ends, without the result.
        var rest = await accepted.Events.ReadToEndAsync(TurnTimeout);
        Assert.DoesNotContain(rest, e => e.Type == "result");
    }

    [Fact]
    public async Task A_running_quick_turns_session_can_be_looked_up_and_interrupted_and_no_other_session_takes_its_id()
    {
        await StartAsync();
        var accepted = await _sessions.Ask<PromptAccepted>(new SubmitQuickTurn($"{Long} a long answer"), Ask);
        await FirstAsync(accepted, "assistant");

        // Its id is the one the quickturn account shows as its active session.
        Assert.Equal(SessionType.Chat, (await _sessions.Ask<SessionInfo>(new GetSession(accepted.SessionId), Ask)).Type);
        Assert.Equal(SessionErrorCodes.Exists, (await _sessions.Ask<SessionRejected>(new CreateSession(SessionType.Full, accepted.SessionId), Ask)).Code);
        Assert.Equal(SessionErrorCodes.TypeMismatch,
            (await _sessions.Ask<SessionRejected>(new SubmitPrompt(accepted.SessionId, "mine now", SessionType.Full), Ask)).Code);
        Assert.Equal(1, (await _sessions.Ask<SessionInterrupted>(new InterruptSession(accepted.SessionId), Ask)).Prompts);

        var events = await accepted.Events.ReadToEndAsync(TurnTimeout);
        Assert.Equal("error_during_execution", JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("subtype").GetString());
    }

    [Fact]
    public async Task A_worker_session_whose_account_failed_moves_to_a_healthy_one_with_its_conversation()
    {
        await StartAsync("konsole.claude.restart { min-backoff = 10ms, max-backoff = 50ms, max-restarts = 1, window = 1m }");
        var worker = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        Assert.Equal("echo: remember 7", ResultText(await PromptAsync(worker, "remember 7")));
        var home = (await _sessions.Ask<SessionInfo>(new GetSession(worker), Ask)).AccountId;
        for (var i = 0; i < 2; i++) // the second loss is over max-restarts = 1: its account fails
            Assert.Equal("error", (await PromptAsync(worker, "[[crash]]"))[^1].Type);
        await AwaitAssertAsync(async () =>
            Assert.Equal(AccountState.Failed, (await AccountsAsync()).Accounts.Single(a => a.Status.AccountId == home).Status.State), TurnTimeout);

        var after = await PromptAsync(worker, "what number?"); // was account_unavailable until the host restarted

        Assert.StartsWith("echo: what number? [history: remember 7", ResultText(after));
        Assert.NotEqual(home, (await _sessions.Ask<SessionInfo>(new GetSession(worker), Ask)).AccountId);
    }

    [Fact]
    public void A_session_id_ends_where_its_characters_end()
    {
        Assert.True(SessionManager.IsValidId("abc"));
        Assert.False(SessionManager.IsValidId("abc\n")); // '$' took it for "abc": a second session beside abc
    }

    [Fact]
    public async Task A_turn_whose_result_was_too_large_to_keep_ends_with_that_error_and_the_conversation_goes_on_on_another_account()
    {
        await StartAsync("konsole.claude.max-line-bytes = 1MiB");
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);

        var first = await PromptAsync(created.SessionId, "Remember 42 [[huge-result:2000000]]");
        await _router.Ask<RoleRouterProtocol.RolesChanged>(RoleRouterProtocol.SwapRoles.Instance, Ask); // the session must know where it was
        var second = await PromptAsync(created.SessionId, "What number?");

        Assert.Equal(TurnErrorCodes.ResultTooLarge, JsonDocument.Parse(first[^1].Data).RootElement.GetProperty("code").GetString());
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(second));
    }

    [Fact]
    public async Task A_line_too_long_to_keep_is_an_event_of_its_own_in_its_place_and_the_turn_goes_on_to_its_result()
    {
        await StartAsync("konsole.claude.max-line-bytes = 1MiB");
        var created = await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask);

        var events = await PromptAsync(created.SessionId, "Remember 42 [[huge:2000000]]");

        var types = events.Select(e => e.Type).Where(t => t != "command_lifecycle").ToList();
        Assert.Equal(["system", "dropped", "rate_limit_event", "result"], types); // where the assistant line was
        var dropped = JsonDocument.Parse(events.Single(e => e.Type == "dropped").Data).RootElement;
        Assert.Equal(("assistant", 1024 * 1024L), (dropped.GetProperty("type").GetString(), dropped.GetProperty("maxLineBytes").GetInt64()));
        Assert.True(dropped.GetProperty("bytes").GetInt64() > 2_000_000);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id)); // numbered like every event
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(await PromptAsync(created.SessionId, "What number?")));
    }

    [Fact]
    public async Task Following_replays_what_was_missed_then_follows_live_events()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var first = await PromptAsync(session, "one");

        var follow = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 2), Ask);
        var second = await PromptAsync(session, "two");
        var followed = new List<SessionEvent>();
        while (followed.Count < first.Count - 2 + second.Count)
            followed.Add(await follow.Events.ReadAsync(new CancellationTokenSource(TurnTimeout).Token));

        Assert.Equal(first.Skip(2).Concat(second), followed);
        _sessions.Tell(new Unfollow(session, follow.SubscriptionId));
        await follow.Events.Completion.WaitAsync(TurnTimeout);
    }

    [Fact]
    public async Task The_replay_buffer_keeps_only_the_latest_events()
    {
        await StartAsync("konsole.sessions.replay-buffer = 5");
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var events = await PromptAsync(session, "[[chunks:10:0]] many");

        var follow = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);

        Assert.Equal(events.Count - 4, follow.FirstAvailable);
        var replayed = new List<SessionEvent>();
        while (follow.Events.TryRead(out var item))
            replayed.Add(item);
        Assert.Equal(events.TakeLast(5), replayed);
    }

    [Fact]
    public async Task A_follower_that_falls_a_buffer_behind_is_ended_and_resumes_from_its_last_event()
    {
        await StartAsync("konsole.sessions.replay-buffer = 5");
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var stuck = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);

        var events = await PromptAsync(session, "[[chunks:10:0]] many");

        var held = await stuck.Events.ReadToEndAsync(TurnTimeout); // it ended instead of holding everything
        Assert.Equal(5, held.Count);
        Assert.Equal(events.Take(5), held);
        var resumed = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: held[^1].Id), Ask);
        var rest = new List<SessionEvent>();
        while (resumed.Events.TryRead(out var item))
            rest.Add(item);
        Assert.Equal(events.TakeLast(5), rest); // what the buffer still holds
    }

    [Fact]
    public async Task The_replay_buffer_holds_no_more_bytes_than_its_bound()
    {
        await StartAsync("konsole.sessions.replay-buffer-bytes = 100KiB");
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var events = new List<SessionEvent>();
        for (var i = 0; i < 6; i++)
            events.AddRange(await PromptAsync(session, "[[huge:40000]] a long answer")); // 40 KB of text in its assistant frame

        var follow = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        var replayed = new List<SessionEvent>();
        while (follow.Events.TryRead(out var item))
            replayed.Add(item);

        Assert.InRange(replayed.Sum(e => (long)e.Data.Length), 1, 100 * 1024);
        Assert.Equal(replayed[0].Id, follow.FirstAvailable);
        Assert.Equal(events.SkipWhile(e => e.Id < follow.FirstAvailable), replayed); // the latest, whole and in order
        Assert.True(follow.FirstAvailable > events.Count / 2, $"first kept: #{follow.FirstAvailable} of {events.Count}");
    }

    [Fact]
    public async Task Past_the_total_replay_bound_the_session_whose_prompt_ended_the_longest_ago_gives_up_its_events()
    {
        await StartAsync("konsole.sessions { replay-buffer-bytes = 100KiB, replay-total-bytes = 150KiB }");
        var (older, newer) = (await CreateAsync(), await CreateAsync());
        var olderEvents = await PromptAsync(older, "[[huge:80000]] an answer of 80 KB");
        var newerEvents = await PromptAsync(newer, "[[huge:80000]] another"); // together over 150 KiB once it has ended

        await AwaitAssertAsync(async () => Assert.Empty(await ReplayAsync(older)), TurnTimeout);
        var gone = await _sessions.Ask<EventsFollowed>(new FollowEvents(older, After: 0), Ask);
        Assert.Equal(olderEvents[^1].Id + 1, gone.FirstAvailable); // a client is told that what came before is gone
        Assert.Equal(newerEvents, await ReplayAsync(newer)); // the newer keeps its own
        var next = await PromptAsync(older, "after giving them up");
        Assert.Equal(olderEvents[^1].Id + 1, next[0].Id); // its ids go on
        Assert.Equal(next, await ReplayAsync(older));
    }

    [Fact]
    public async Task A_session_asked_to_give_up_its_events_while_it_runs_a_prompt_keeps_them_and_the_next_oldest_gives_up_instead()
    {
        await StartAsync("konsole.sessions { replay-buffer-bytes = 100KiB, replay-total-bytes = 150KiB }");
        // The busy one a chat session: its running prompt holds the chat process, not the full one the others run on.
        var (busy, small, last) = (await CreateAsync(SessionType.Chat), await CreateAsync(), await CreateAsync());
        var busyEvents = await PromptAsync(busy, "[[huge:80000]] an answer of 80 KB");
        await PromptAsync(small, "a short answer");
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(busy, "[[delay:600000]] runs on"), Ask);

        await PromptAsync(last, "[[huge:80000]] another"); // over the bound: busy, the oldest, is asked first

        await AwaitAssertAsync(async () => Assert.Empty(await ReplayAsync(small)), TurnTimeout); // asked in its place
        Assert.Equal(busyEvents, (await ReplayAsync(busy)).Take(busyEvents.Count)); // kept, and its running prompt's too
        Assert.NotNull(running);
    }

    private async Task<string> CreateAsync(SessionType type = SessionType.Full) => (await _sessions.Ask<SessionInfo>(new CreateSession(type), Ask)).SessionId;

    private async Task<List<SessionEvent>> ReplayAsync(string session)
    {
        var follow = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);
        _sessions.Tell(new Unfollow(session, follow.SubscriptionId));
        var replayed = new List<SessionEvent>();
        while (follow.Events.TryRead(out var item))
            replayed.Add(item);
        return replayed;
    }

    [Fact]
    public async Task A_follower_that_has_not_read_what_the_bytes_bound_gave_up_is_ended_and_resumes_from_its_last_event()
    {
        await StartAsync("konsole.sessions.replay-buffer-bytes = 100KiB");
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var stuck = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: 0), Ask);

        var events = new List<SessionEvent>();
        for (var i = 0; i < 6; i++)
            events.AddRange(await PromptAsync(session, "[[huge:40000]] a long answer"));

        var held = await stuck.Events.ReadToEndAsync(TurnTimeout); // it ended instead of holding all 240 KB
        Assert.InRange(held.Count, 1, events.Count - 1);
        Assert.Equal(events.Take(held.Count), held);
        Assert.InRange(held.Sum(e => (long)e.Data.Length), 1, 2 * 100 * 1024);
        var resumed = await _sessions.Ask<EventsFollowed>(new FollowEvents(session, After: held[^1].Id), Ask);
        Assert.True(resumed.FirstAvailable > held[^1].Id + 1, "what it missed is gone, and the stream says from where it goes on");
        var rest = new List<SessionEvent>();
        while (resumed.Events.TryRead(out var item))
            rest.Add(item);
        Assert.Equal(events.SkipWhile(e => e.Id < resumed.FirstAvailable), rest);
    }

    [Fact]
    public async Task Closing_a_session_ends_its_running_prompt_with_session_closed_and_refuses_what_comes_next()
    {
        var events = EventsOf(typeof(SessionEnded));
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, $"{Long} busy"), Ask);
        await FirstAsync(running, "assistant");
        var actor = await Sys.ActorSelection(_sessions.Path / $"session-{session}").ResolveOne(Ask);
        Watch(actor);

        await _sessions.Ask<SessionClosed>(new CloseSession(session), Ask);

        await ExpectTerminatedAsync(actor); // and its replay buffer with it
        var rest = await running.Events.ReadToEndAsync(TurnTimeout);
        Assert.Equal("error", rest[^1].Type);
        Assert.Equal(TurnErrorCodes.SessionClosed, JsonDocument.Parse(rest[^1].Data).RootElement.GetProperty("code").GetString());
        Assert.Equal(session, (await events.ExpectMsgAsync<SessionEnded>()).SessionId);
        var refused = await _sessions.Ask<SessionRejected>(new SubmitPrompt(session, "again", CreateAs: SessionType.Full), Ask);
        Assert.Equal(SessionErrorCodes.Closed, refused.Code);
        Assert.Equal(SessionErrorCodes.NotFound, (await _sessions.Ask<SessionRejected>(new GetSession("never-was"), Ask)).Code);
        // The interrupted turn ended on its account, which serves the next prompt.
        await AwaitAssertAsync(async () => Assert.False((await RoleStatusAsync()).Dashboard.Busy), TurnTimeout);
    }

    [Fact]
    public async Task A_prompt_to_an_unknown_id_creates_the_session_when_asked_to_and_odd_ids_are_refused()
    {
        await StartAsync();

        var accepted = await _sessions.Ask<PromptAccepted>(new SubmitPrompt("ui-7", "hello", CreateAs: SessionType.Full), Ask);
        await accepted.Events.ReadToEndAsync(TurnTimeout);

        Assert.Equal(SessionType.Full, (await _sessions.Ask<SessionInfo>(new GetSession("ui-7"), Ask)).Type);
        Assert.Equal(SessionErrorCodes.NotFound, (await _sessions.Ask<SessionRejected>(new SubmitPrompt("ui-8", "hello"), Ask)).Code);
        foreach (var odd in new[] { "../x", "", "a b", new string('x', 129), "-leading" })
        {
            Assert.Equal(SessionErrorCodes.InvalidId, (await _sessions.Ask<SessionRejected>(new SubmitPrompt(odd, "hi", CreateAs: SessionType.Full), Ask)).Code);
            Assert.Equal(SessionErrorCodes.NotFound, (await _sessions.Ask<SessionRejected>(new GetSession(odd), Ask)).Code); // looked up: no such session
        }
        Assert.Equal(SessionErrorCodes.Exists, (await _sessions.Ask<SessionRejected>(new CreateSession(SessionType.Chat, "ui-7"), Ask)).Code);
    }

    [Fact]
    public async Task Worker_sessions_run_on_processes_of_their_own_and_a_worker_beyond_max_workers_waits_for_a_place()
    {
        await StartAsync("konsole.sessions.max-workers = 1");
        var a = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var b = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var first = await PromptAsync(a, "Remember 42");
        Assert.Equal("beta", (await _sessions.Ask<SessionInfo>(new GetSession(a), Ask)).AccountId); // not the dashboard account
        Assert.Equal("alpha", (await _sessions.Ask<SessionInfo>(new GetSession(b), Ask)).AccountId); // beta has a worker already

        var second = await PromptAsync(a, "What number?");
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(second));
        var beta = (await AccountsAsync()).Accounts[1].Status;
        var worker = Assert.Single(beta.Processes, p => p.Mode == ProcessMode.Worker);
        Assert.Equal(a, worker.WorkerSessionId);
        Assert.DoesNotContain(beta.Processes.Where(p => p.Mode != ProcessMode.Worker), p => p.ProcessId == worker.ProcessId);
        Assert.True(beta.Warm);
    }

    [Fact]
    public async Task A_worker_waiting_for_a_place_moves_to_another_account_when_a_place_frees_there()
    {
        var (w1, w2, w3, other) = await ThreeWorkersAsync();
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w1, $"{Long} w1"), Ask); // runs far longer than TurnTimeout
        await FirstAsync(running, "assistant");
        await FirstAsync(await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w2, $"{Long} w2"), Ask), "assistant");
        var waiting = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w3, "w3 waits"), Ask);
        await FirstAsync(waiting, "queued");

        await _sessions.Ask<SessionClosed>(new CloseSession(w2), Ask);

        Assert.Equal("echo: w3 waits", ResultText(await waiting.Events.ReadToEndAsync(TurnTimeout)));
        Assert.Equal(other, (await _sessions.Ask<SessionInfo>(new GetSession(w3), Ask)).AccountId);
        Assert.Equal("echo: w3 again [history: w3 waits]", ResultText(await PromptAsync(w3, "w3 again")));
    }

    [Fact]
    public async Task A_worker_waiting_behind_busy_workers_moves_to_an_account_whose_worker_is_idle_and_takes_its_place()
    {
        var (w1, w2, w3, other) = await ThreeWorkersAsync();
        Assert.Equal("echo: w2", ResultText(await PromptAsync(w2, "w2"))); // idle from now on
        await FirstAsync(await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w1, $"{Long} w1"), Ask), "assistant"); // runs far longer than TurnTimeout

        Assert.Equal("echo: w3", ResultText(await PromptAsync(w3, "w3")));
        Assert.Equal(other, (await _sessions.Ask<SessionInfo>(new GetSession(w3), Ask)).AccountId);
        Assert.Equal("echo: w2 again [history: w2]", ResultText(await PromptAsync(w2, "w2 again")));
    }

    [Fact]
    public async Task A_parked_worker_moving_to_an_idle_place_elsewhere_keeps_its_conversation_for_a_prompt_that_follows_its_last_turn()
    {
        var (w1, w2, w3, _) = await ThreeWorkersAsync();
        var remember = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w3, "Remember 3"), Ask);
        Assert.Equal("echo: Remember 3", ResultText(await remember.Events.ReadToEndAsync(TurnTimeout)));
        Assert.Equal("echo: w2", ResultText(await PromptAsync(w2, "w2"))); // idle from now on
        await FirstAsync(await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w1, $"{Long} w1"), Ask), "assistant"); // w3 is parked

        // Sent as its session sends a prompt while the one before still runs: naming no conversation, following that prompt.
        var caller = CreateTestProbe();
        _router.Tell(new RoleRouterProtocol.RouteWorkerPrompt(new Prompt(Prompt.NewId(), w3, "What number?", null, caller.Ref, After: remember.PromptId)));
        await caller.FishForMessageAsync<RoleRouterProtocol.WorkerAssigned>(_ => true, TurnTimeout); // it moved
        Assert.Equal("echo: What number? [history: Remember 3]", (await caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
    }

    [Fact]
    public async Task Workers_waiting_for_a_place_move_to_a_place_freed_elsewhere_in_the_order_they_began_to_wait_a_parked_one_included()
    {
        var (w1, w2, w3, _) = await ThreeWorkersAsync();
        await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask); // on the other account, without prompts
        var w5 = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        Assert.Equal(await AssignedAccountAsync(w1), await AssignedAccountAsync(w5));
        Assert.Equal("echo: w3", ResultText(await PromptAsync(w3, "w3")));
        var busyElsewhere = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w2, $"{Long} w2"), Ask);
        await FirstAsync(busyElsewhere, "assistant");
        await FirstAsync(await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w1, $"{Long} w1"), Ask), "assistant"); // w3 is parked

        var first = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w5, "[[chunks:20:100]] w5 waits first"), Ask);
        await FirstAsync(first, "queued");
        var second = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(w3, "[[chunks:20:100]] w3 waits second"), Ask);
        await FirstAsync(second, "queued");
        await _sessions.Ask<SessionInterrupted>(new InterruptSession(w2), Ask); // a place frees on the other account

        // It goes to w5, which began to wait first, though w3's slot is older; w3 moves there once w5's turn has ended.
        var started = await Task.WhenAny(FirstAsync(first, "assistant"), FirstAsync(second, "assistant"));
        Assert.Equal(first.PromptId, (await started).PromptId);
        await _sessions.Ask<SessionInterrupted>(new InterruptSession(w1), Ask);
    }

    /// <summary>One worker place per account: w1 and w3 are on one account, w2 on the other.</summary>
    private async Task<(string W1, string W2, string W3, string Other)> ThreeWorkersAsync()
    {
        await StartAsync("konsole.sessions.max-workers = 1");
        var w1 = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var w2 = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var w3 = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Worker), Ask)).SessionId;
        var home = await AssignedAccountAsync(w1);
        var other = await AssignedAccountAsync(w2);
        Assert.Equal(home, await AssignedAccountAsync(w3));
        return (w1, w2, w3, other);
    }

    [Fact]
    public async Task A_quick_turn_runs_stateless_on_the_quickturn_account_in_a_session_that_closes_after_it()
    {
        var opened = EventsOf(typeof(SessionOpened));
        await StartAsync();

        var first = await _sessions.Ask<PromptAccepted>(new SubmitQuickTurn("Remember 42 [[env:CLAUDE_CONFIG_DIR]]"), Ask);
        var firstEvents = await first.Events.ReadToEndAsync(TurnTimeout);
        var second = await _sessions.Ask<PromptAccepted>(new SubmitQuickTurn("What number?"), Ask);
        var secondEvents = await second.Events.ReadToEndAsync(TurnTimeout);

        Assert.Contains(Sandbox.Accounts[1].ConfigDir, ResultText(firstEvents));
        Assert.Equal("echo: What number?", ResultText(secondEvents));
        Assert.Equal(1, secondEvents[0].Id);
        Assert.Equal(SessionErrorCodes.NotFound, (await _sessions.Ask<SessionRejected>(new GetSession(first.SessionId), Ask)).Code);
        await opened.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task Interrupting_a_session_ends_its_running_prompt_with_the_clis_result()
    {
        await StartAsync();
        var session = (await _sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Ask)).SessionId;
        var running = await _sessions.Ask<PromptAccepted>(new SubmitPrompt(session, $"{Long} busy"), Ask);
        await FirstAsync(running, "assistant");

        var interrupted = await _sessions.Ask<SessionInterrupted>(new InterruptSession(session), Ask);

        Assert.Equal(1, interrupted.Prompts);
        var rest = await running.Events.ReadToEndAsync(TurnTimeout);
        Assert.Equal("error_during_execution", JsonDocument.Parse(rest[^1].Data).RootElement.GetProperty("subtype").GetString());
    }
}
