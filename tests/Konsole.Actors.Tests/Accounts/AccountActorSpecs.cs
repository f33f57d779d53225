using Akka.Actor;
using Akka.TestKit;
using Konsole.Actors.Accounts;
using Konsole.Actors.Configuration;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;
using static Konsole.Actors.Accounts.AccountProtocol;
using static Konsole.Actors.Processes.HotProcessProtocol;

namespace Konsole.Actors.Tests.Accounts;

/// <summary>AccountActor over real FakeClaude processes; a probe stands in for its parent (the router).</summary>
public sealed class AccountActorSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 1)
{
    /// <summary>A turn that runs until it is interrupted (about 50 s otherwise).</summary>
    private const string Long = "[[chunks:1000:50]]";

    private TestProbe _parent = null!;
    private IActorRef _account = null!;

    [Fact]
    public async Task Starts_both_processes_warm_and_reports_its_status()
    {
        var status = await StartAsync();

        Assert.Equal(AccountState.Idle, status.State);
        Assert.Equal([ProcessMode.Full, ProcessMode.Chat], status.Processes.Select(p => p.Mode));
        Assert.All(status.Processes, p => Assert.NotNull(p.ProcessId));
        Assert.Equal("alpha.test", status.Label);
        Assert.Equal("20x", status.Tier);
        Assert.False(status.UsesApiKey);
        Assert.InRange(status.ExpiresAt!.Value, DateTimeOffset.UtcNow.AddHours(23), DateTimeOffset.UtcNow.AddHours(25));
    }

    [Fact]
    public async Task Prompts_queue_in_order_and_each_waiting_caller_learns_its_position_as_it_moves_up()
    {
        var account = await StartAccountAsync();
        var prompts = new[] { $"{Long} one", "two", "three", "four" }.Select(t => NewPrompt(t)).ToList();

        foreach (var (prompt, _) in prompts)
            account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
        await prompts[3].Caller.ExpectMsgAsync<PromptQueued>(q => Assert.Equal(3, q.Position));
        await prompts[0].Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        account.Tell(new InterruptPrompt(prompts[0].Prompt.PromptId));
        var turns = new List<TurnRecord>();
        foreach (var (_, caller) in prompts)
            turns.Add(await caller.ReceiveTurnAsync(TurnTimeout));

        Assert.Empty(turns[0].Queued);
        Assert.Equal([1], turns[1].Queued.Select(q => q.Position));
        Assert.Equal([2, 1], turns[2].Queued.Select(q => q.Position));
        Assert.Equal([2, 1], turns[3].Queued.Select(q => q.Position)); // its 3 was taken above
        Assert.All(turns.SelectMany(t => t.Queued), q => Assert.Equal("alpha", q.AccountId));
        // One session, one conversation: the last turn saw the others, in order.
        Assert.Equal("echo: four [history: one | two | three]", turns[3].ResultText);
    }

    [Fact]
    public async Task Beyond_the_queue_bound_a_prompt_fails_at_once_with_queue_full()
    {
        var account = await StartAccountAsync("konsole.queue.max-depth = 2");
        var running = NewPrompt($"{Long} busy");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        var waiting = new[] { NewPrompt("a"), NewPrompt("b") };
        foreach (var (prompt, caller) in waiting)
        {
            account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
            await caller.ExpectMsgAsync<PromptQueued>();
        }

        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var (extra, extraCaller) = NewPrompt("c");
        account.Tell(new SubmitPrompt(extra, ProcessMode.Chat));

        var failed = await extraCaller.ExpectMsgAsync<TurnFailed>(TurnTimeout); // long before the 50 s turn ahead of it ends
        Assert.Equal(TurnErrorCodes.QueueFull, failed.Code);
        Assert.Contains("konsole.queue.max-depth = 2", failed.Message);
        account.Tell(new InterruptPrompt(running.Prompt.PromptId));
        Assert.NotNull((await running.Caller.ReceiveTurnAsync(TurnTimeout)).Completed);
        foreach (var (_, caller) in waiting)
            Assert.NotNull((await caller.ReceiveTurnAsync(TurnTimeout)).Completed);
    }

    [Fact]
    public async Task Interrupting_a_queued_prompt_drops_it_and_moves_the_others_up()
    {
        var account = await StartAccountAsync();
        var running = NewPrompt($"{Long} busy");
        var dropped = NewPrompt("dropped");
        var behind = NewPrompt("behind");
        foreach (var p in new[] { running, dropped, behind })
            account.Tell(new SubmitPrompt(p.Prompt, ProcessMode.Full));
        await behind.Caller.ExpectMsgAsync<PromptQueued>(q => Assert.Equal(2, q.Position));

        account.Tell(new InterruptPrompt(dropped.Prompt.PromptId));

        var failed = await dropped.Caller.FishForMessageAsync<TurnFailed>(_ => true);
        Assert.Equal(TurnErrorCodes.Interrupted, failed.Code);
        await behind.Caller.ExpectMsgAsync<PromptQueued>(q => Assert.Equal(1, q.Position));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        account.Tell(new InterruptPrompt(running.Prompt.PromptId));
        Assert.Equal("echo: behind [history: busy]", (await behind.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
    }

    [Fact]
    public async Task Interrupting_the_running_prompt_ends_it_with_the_clis_result()
    {
        var account = await StartAccountAsync();
        var (prompt, caller) = NewPrompt($"{Long} long");
        account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
        await caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);

        account.Tell(new InterruptPrompt(prompt.PromptId));

        var turn = await caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal("error_during_execution", turn.Completed!.Result.Subtype);
    }

    [Fact]
    public async Task A_crash_fails_the_running_turn_with_process_crashed_then_the_process_resumes_and_serves_the_queue()
    {
        var events = EventsOf(typeof(ProcessRestarted));
        var account = await StartAccountAsync();
        var first = NewPrompt("Remember 42");
        account.Tell(new SubmitPrompt(first.Prompt, ProcessMode.Full));
        var conversation = (await first.Caller.ReceiveTurnAsync(TurnTimeout)).Completed!.Conversation;

        var crash = NewPrompt("[[crash]]", conversation: conversation);
        var next = NewPrompt("What number?", conversation: conversation);
        account.Tell(new SubmitPrompt(crash.Prompt, ProcessMode.Full));
        account.Tell(new SubmitPrompt(next.Prompt, ProcessMode.Full));

        var crashed = await crash.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal(TurnErrorCodes.ProcessCrashed, crashed.Failed?.Code);
        Assert.Contains("exited with code 3", crashed.Failed!.Message);
        var restarted = await events.ExpectMsgAsync<ProcessRestarted>();
        Assert.Equal(("alpha", ProcessMode.Full, 1), (restarted.AccountId, restarted.Mode, restarted.Attempt));
        var served = await next.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Contains("Remember 42", served.ResultText);
        Assert.Equal(conversation!.SessionId, served.Completed!.Conversation!.SessionId);
    }

    [Fact]
    public async Task Its_state_events_say_it_is_busy_under_another_state_and_when_a_turn_ends_there()
    {
        var events = EventsOf(typeof(AccountStateChanged));
        var account = await StartAccountAsync("konsole.claude.restart { min-backoff = 10s, max-backoff = 10s }");
        var running = NewPrompt("[[chunks:20:50]] long");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var crash = NewPrompt("[[crash]]");
        account.Tell(new SubmitPrompt(crash.Prompt, ProcessMode.Chat));
        Assert.Equal(TurnErrorCodes.ProcessCrashed, (await crash.Caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);

        var restarting = await events.FishForMessageAsync<AccountStateChanged>(e => e.State == AccountState.Restarting, TurnTimeout);
        Assert.True(restarting.Busy, "restarting its chat process, it still runs the full turn"); // was shown not busy
        await running.Caller.ReceiveTurnAsync(TurnTimeout);
        var ended = await events.FishForMessageAsync<AccountStateChanged>(e => !e.Busy, TurnTimeout); // was never told
        Assert.Equal((AccountState.Restarting, AccountState.Restarting), (ended.State, ended.Previous)); // its chat process waits 10 s
    }

    [Fact]
    public async Task A_hung_turn_ends_with_turn_timeout_not_process_crashed_and_the_restarted_process_serves_the_next()
    {
        var events = EventsOf(typeof(ProcessRestarted));
        var account = await StartAccountAsync("konsole.claude { turn-timeout = 5s, interrupt-timeout = 300ms }"); // 5s: "next" runs on a just-restarted CLI on a slow machine
        var hung = NewPrompt("[[hang]] stuck");
        var next = NewPrompt("next");
        account.Tell(new SubmitPrompt(hung.Prompt, ProcessMode.Full));
        account.Tell(new SubmitPrompt(next.Prompt, ProcessMode.Full));

        Assert.Equal(TurnErrorCodes.TurnTimeout, (await hung.Caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);
        Assert.Contains("killed by the watchdog", (await events.ExpectMsgAsync<ProcessRestarted>(TurnTimeout)).Reason);
        Assert.StartsWith("echo: next", (await next.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        await hung.Caller.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100)); // exactly one end
    }

    [Fact]
    public async Task A_process_lost_in_a_loop_backs_off_then_fails_the_account_with_the_reason()
    {
        var states = EventsOf(typeof(AccountStateChanged));
        var restarts = EventsOf(typeof(ProcessRestarted));
        // A CLI that exits at once: every start is lost.
        var settings = Sandbox.Settings("/bin/false", extraHocon: "konsole.claude.restart { min-backoff = 50ms, max-backoff = 200ms, max-restarts = 3, window = 1m }");
        var account = Sys.ActorOf(AccountActor.Props(settings.Accounts[0], settings));

        var failed = await states.FishForMessageAsync<AccountStateChanged>(s => s.State == AccountState.Failed, TurnTimeout);

        Assert.Contains("lost 4 times within 1 min (konsole.claude.restart.max-restarts = 3)", failed.Reason);
        var delays = new List<TimeSpan>();
        while (restarts.HasMessages)
            delays.Add((await restarts.ExpectMsgAsync<ProcessRestarted>()).Delay);
        Assert.True(delays.Count >= 3);
        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromMilliseconds(40), TimeSpan.FromMilliseconds(240)));
        var status = await StatusOf(account);
        Assert.Equal(AccountState.Failed, status.State);
        Assert.Equal(failed.Reason, status.StateReason);
        var (prompt, caller) = NewPrompt("anyone?");
        account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
        var refused = await caller.ExpectMsgAsync<TurnFailed>(TurnTimeout);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, refused.Code);
        Assert.Contains("failed", refused.Message);
    }

    [Fact]
    public async Task A_warning_reported_once_a_rejection_has_reset_but_before_its_reset_is_handled_leaves_the_account_unlimited()
    {
        var account = await StartAccountAsync();
        // A rejection whose reset time has just passed (its reset comes on the next tick), then a later turn's warning.
        account.Tell(new RateLimitObserved(new Konsole.Actors.Protocol.RateLimitInfo("rejected", DateTimeOffset.UtcNow.AddSeconds(-1), "five_hour", null)));
        account.Tell(new RateLimitObserved(new Konsole.Actors.Protocol.RateLimitInfo("allowed_warning", DateTimeOffset.UtcNow.AddDays(7), "seven_day", 0.5)));

        // Before: the warning's reset timer replaced the rejection's, and the account stayed rate-limited for the warning's 7 days.
        var status = await StatusAsync();
        Assert.Equal(AccountState.Idle, status.State);
        Assert.Null(status.StateReason);
        Assert.Equal("allowed_warning", status.RateLimit?.Status);
    }

    [Fact]
    public async Task A_cli_that_hangs_as_it_boots_fails_the_account_though_its_losses_are_too_slow_to_fill_the_window()
    {
        var states = EventsOf(typeof(AccountStateChanged));
        // A CLI that never answers initialize: each start is lost at start-timeout, then restarted after the backoff, 2 s or more
        // a time, so the 1.5 s window never holds more than one loss.
        var cli = Path.Combine(Sandbox.Root, "hangs-at-boot");
        File.WriteAllText(cli, "#!/bin/sh\nexec cat > /dev/null\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(cli, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var settings = Sandbox.Settings(cli, extraHocon: "konsole.claude { start-timeout = 1s, restart { min-backoff = 1s, max-backoff = 1s, " +
            "random-factor = 0, max-restarts = 2, window = 1500ms } }");
        var account = Sys.ActorOf(AccountActor.Props(settings.Accounts[0], settings));
        var (prompt, caller) = NewPrompt("waits for a CLI that never boots");
        account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));

        var failed = await states.FishForMessageAsync<AccountStateChanged>(s => s.State == AccountState.Failed, TurnTimeout);

        Assert.Contains("lost 3 times in a row before it was ready (konsole.claude.restart.max-restarts = 2)", failed.Reason);
        Assert.Contains("did not answer initialize", failed.Reason);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code); // not left waiting
    }

    [Fact]
    public async Task Draining_lets_the_running_turn_finish_starts_nothing_new_and_refuses_new_prompts()
    {
        var account = await StartAccountAsync();
        var running = NewPrompt("[[chunks:10:50]] finishing");
        var queued = NewPrompt("queued");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        account.Tell(new SubmitPrompt(queued.Prompt, ProcessMode.Full));
        // Told before the first turn can end (the account takes its messages in order): one prompt runs, the other waits.
        // Waiting for the turn's output first left the drain to race its end on a loaded machine.
        account.Tell(new Drain(TimeSpan.FromMinutes(1)));
        var late = NewPrompt("late");
        account.Tell(new SubmitPrompt(late.Prompt, ProcessMode.Chat));

        var finished = await running.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal(("echo: finishing", false), (finished.ResultText, finished.NotStarted)); // it had started
        var refused = await late.Caller.ExpectMsgAsync<TurnFailed>(TurnTimeout);
        Assert.Equal((TurnErrorCodes.AccountUnavailable, "the host is shutting down"), (refused.Code, refused.Message));
        await AwaitAssertAsync(async () => Assert.Equal((AccountState.Idle, 1), ((await StatusAsync()).State, (await StatusAsync()).QueueDepth)), TurnTimeout);
        await queued.Caller.ExpectMsgAsync<PromptQueued>();
        Assert.Equal(queued.Prompt.PromptId, (await queued.Caller.ExpectMsgAsync<PromptNotStarted>()).PromptId); // told at the drain
        await queued.Caller.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200)); // it never starts
    }

    [Fact]
    public async Task Draining_interrupts_a_turn_still_running_at_the_deadline()
    {
        var account = await StartAccountAsync();
        var running = NewPrompt($"{Long} too long");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);

        account.Tell(new Drain(TimeSpan.FromMilliseconds(200)));

        Assert.Equal("error_during_execution", (await running.Caller.ReceiveTurnAsync(TurnTimeout)).Completed?.Result.Subtype);
    }

    [Fact]
    public async Task A_prompt_its_session_confirms_after_the_drain_deadline_does_not_start()
    {
        var account = await StartAccountAsync();
        var chat = NewPrompt($"{Long} on the chat process");
        account.Tell(new SubmitPrompt(chat.Prompt, ProcessMode.Chat));
        await chat.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var session = CreateTestProbe();
        var prompt = new Prompt(Prompt.NewId(), "ses-1", $"{Long} confirmed late", null, session.Ref, ConfirmDispatch: true);
        account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
        await session.ExpectMsgAsync<DispatchRequested>(TurnTimeout);

        account.Tell(new Drain(TimeSpan.Zero));
        Assert.Equal("error_during_execution", (await chat.Caller.ReceiveTurnAsync(TurnTimeout)).Completed?.Result.Subtype); // the deadline passed
        account.Tell(new DispatchConfirmed(prompt.PromptId));

        // Its session is told, as of those queued when the drain began (before, it heard nothing: its client's stream stayed open).
        Assert.Equal(new PromptNotStarted(prompt.PromptId), await session.ExpectMsgAsync<PromptNotStarted>(TurnTimeout));
        var status = await StatusAsync();
        Assert.Equal((false, 1), (status.Processes[0].Busy, status.QueueDepth)); // it waits, with its session, for the restart
    }

    [Fact]
    public async Task Prompts_their_sessions_journaled_stay_for_the_restart_when_a_draining_account_is_rate_limited_or_handed_one()
    {
        var account = await StartAccountAsync();
        var running = NewPrompt($"{Long} running");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        var session = CreateTestProbe();
        var queued = new Prompt(Prompt.NewId(), "ses-1", "queued", null, session.Ref, ConfirmDispatch: true);
        account.Tell(new SubmitPrompt(queued, ProcessMode.Full));
        account.Tell(new Drain(TimeSpan.FromMinutes(1)));

        // The running turn reports the account rejected; a prompt another account handed back arrives.
        account.Tell(new RateLimitObserved(new Konsole.Actors.Protocol.RateLimitInfo("rejected", DateTimeOffset.UtcNow.AddHours(1), "five_hour", null)));
        var handedOn = new Prompt(Prompt.NewId(), "ses-2", "handed on", null, session.Ref, ConfirmDispatch: true);
        account.Tell(new SubmitPrompt(handedOn, ProcessMode.Full));
        var late = NewPrompt("a quick turn's, not journaled");
        account.Tell(new SubmitPrompt(late.Prompt, ProcessMode.Chat));
        Assert.Equal(2, (await StatusAsync()).QueueDepth); // answered after all of the above

        // Handed on, the queued one would be refused by the other accounts (draining too), and ended by its session for good.
        var toParent = new List<object>();
        while (_parent.HasMessages)
            toParent.Add(await _parent.ReceiveOneAsync(TurnTimeout));
        Assert.DoesNotContain(toParent, m => m is PromptHandedBack);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await late.Caller.ExpectMsgAsync<TurnFailed>(TurnTimeout)).Code);
        Watch(account);
        Sys.Stop(account);
        await ExpectTerminatedAsync(account, TurnTimeout);
        var toSession = new List<object>();
        while (session.HasMessages)
            toSession.Add(await session.ReceiveOneAsync(TurnTimeout));
        // Neither is failed: both run after the restart (their sessions are told they do not start before it).
        Assert.Equal([
            new PromptQueued(queued.PromptId, Sandbox.Accounts[0].Id, 1), new PromptNotStarted(queued.PromptId),
            new PromptQueued(handedOn.PromptId, Sandbox.Accounts[0].Id, 2), new PromptNotStarted(handedOn.PromptId),
        ], toSession);
    }

    [Fact]
    public async Task A_prompt_interrupted_while_its_session_is_asked_to_confirm_it_is_dropped_at_once_and_the_next_goes_on()
    {
        var account = await StartAccountAsync();
        var gone = CreateTestProbe(); // as a session stopping on a journal fault: it never confirms, and interrupts its prompts
        var dropped = new Prompt(Prompt.NewId(), "ses-1", "never confirmed", null, gone.Ref, ConfirmDispatch: true);
        var session = CreateTestProbe();
        var next = new Prompt(Prompt.NewId(), "ses-2", "next", null, session.Ref, ConfirmDispatch: true);
        account.Tell(new SubmitPrompt(dropped, ProcessMode.Full));
        account.Tell(new SubmitPrompt(next, ProcessMode.Full));
        await gone.ExpectMsgAsync<DispatchRequested>(TurnTimeout);

        account.Tell(new InterruptPrompt(dropped.PromptId));

        Assert.Equal(TurnErrorCodes.Interrupted, (await gone.ExpectMsgAsync<TurnFailed>(TurnTimeout)).Code);
        // Well before the confirmation timeout (30 s) would have given the dropped one up.
        await session.FishForMessageAsync<DispatchRequested>(_ => true, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_prompt_whose_process_restarts_on_its_conversation_does_not_start_once_the_drain_deadline_passed()
    {
        var account = await StartAccountAsync();
        var a1 = await RunAsync(account, NewPrompt("I am A", session: "A"));
        await RunAsync(account, NewPrompt("I am B", session: "B"));
        var pidBefore = (await StatusAsync()).Processes[0].ProcessId;
        var a2 = NewPrompt($"{Long} A again", session: "A", conversation: a1.Completed!.Conversation);
        account.Tell(new SubmitPrompt(a2.Prompt, ProcessMode.Full)); // its process starts again with --resume for it

        account.Tell(new Drain(TimeSpan.Zero));

        await AwaitAssertAsync(async () => Assert.NotEqual(pidBefore, (await StatusAsync()).Processes[0].ProcessId ?? pidBefore), TurnTimeout);
        var status = await StatusAsync();
        if (status.Processes[0].Busy) // it started before the deadline had passed: then the deadline interrupted it
            Assert.Equal("error_during_execution", (await a2.Caller.ReceiveTurnAsync(TurnTimeout)).Completed?.Result.Subtype);
        else
        {
            Assert.Equal(1, status.QueueDepth);
            await a2.Caller.ExpectMsgAsync<PromptNotStarted>(TurnTimeout); // its caller is told, as of one queued when the drain began
        }
    }

    [Fact]
    public async Task An_account_without_a_readable_login_says_so_until_it_has_one()
    {
        var credentials = Path.Combine(Sandbox.Accounts[0].ConfigDir, AccountCredentials.FileName);
        File.Delete(credentials);
        await StartAccountAsync();

        await AwaitAssertAsync(async () => Assert.Equal(
            $"no OAuth login could be read: {credentials} does not exist (claude login with CLAUDE_CONFIG_DIR set to its directory)",
            (await StatusAsync()).OAuthError), TurnTimeout); // it was silent: no expiry, no error, no log line
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], DateTimeOffset.UtcNow.AddHours(8));
        await RunAsync(_account, NewPrompt("read it again after this turn"));

        await AwaitAssertAsync(async () => Assert.Null((await StatusAsync()).OAuthError), TurnTimeout);
    }

    [Fact]
    public async Task A_conversation_its_cli_will_not_resume_is_given_up_after_two_tries_and_its_prompt_runs_in_a_new_one()
    {
        var account = await StartAccountAsync();
        var a1 = await RunAsync(account, NewPrompt("I am A", session: "A"));
        await RunAsync(account, NewPrompt("I am B", session: "B")); // the full process moves on to B's conversation
        // A line in A's transcript the CLI cannot read: a --resume of it exits at once.
        var transcript = Directory.EnumerateFiles(Path.Combine(Sandbox.Accounts[0].ConfigDir, "projects"),
            $"{a1.Completed!.Conversation!.SessionId}.jsonl", SearchOption.AllDirectories).Single();
        File.AppendAllText(transcript, "not json\n");

        var a2 = await RunAsync(account, NewPrompt("Who am I?", session: "A", conversation: a1.Completed.Conversation));

        Assert.Equal("echo: Who am I?", a2.ResultText); // a new conversation: before, its process restarted on A's until the account failed
        Assert.NotEqual(AccountState.Failed, (await StatusAsync()).State);
    }

    [Fact]
    public async Task Each_session_keeps_its_own_conversation_on_a_shared_process()
    {
        var account = await StartAccountAsync();
        var a1 = await RunAsync(account, NewPrompt("I am A", session: "A"));
        var b1 = await RunAsync(account, NewPrompt("I am B", session: "B"));
        var pidBefore = (await StatusAsync()).Processes[0].ProcessId;

        var a2 = await RunAsync(account, NewPrompt("Who am I?", session: "A", conversation: a1.Completed!.Conversation));

        Assert.Equal("echo: I am B", b1.ResultText); // a new conversation: B never saw A
        Assert.Equal("echo: Who am I? [history: I am A]", a2.ResultText);
        Assert.Equal(a1.Completed.Conversation!.SessionId, a2.Completed!.Conversation!.SessionId);
        Assert.NotEqual(pidBefore, (await StatusAsync()).Processes[0].ProcessId); // switched with --resume
    }

    [Fact]
    public async Task Chat_turns_are_stateless_and_do_not_wait_behind_a_full_turn()
    {
        var account = await StartAccountAsync();
        var full = NewPrompt($"{Long} full turn");
        account.Tell(new SubmitPrompt(full.Prompt, ProcessMode.Full));
        await full.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);

        var first = await RunAsync(account, NewPrompt("Remember 42"), ProcessMode.Chat);
        var second = await RunAsync(account, NewPrompt("What number?"), ProcessMode.Chat);

        Assert.Equal("echo: What number?", second.ResultText);
        Assert.Null(first.Completed!.Conversation);
        account.Tell(new InterruptPrompt(full.Prompt.PromptId));
        var fullTurn = await full.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal("error_during_execution", fullTurn.Completed!.Result.Subtype); // it ran all along
    }

    [Theory]
    [InlineData("error")]
    [InlineData("hang")]
    public async Task A_chat_process_whose_clear_fails_is_replaced_by_an_empty_one_before_the_next_chat_turn(string fault)
    {
        var account = await StartAccountAsync("konsole.claude.turn-timeout = 5s"); // how long a /clear may stay silent (the turns before it run within it on a slow machine)

        var first = await RunAsync(account, NewPrompt($"[[clear:{fault}]] Remember 42"), ProcessMode.Chat);
        await _parent.FishForMessageAsync<AccountStatus>(s => s.Processes[1] is { Restarts: 1, ProcessId: not null }, TurnTimeout);
        var second = await RunAsync(account, NewPrompt("What number?"), ProcessMode.Chat);

        Assert.Equal("echo: Remember 42", first.ResultText);
        Assert.Equal("echo: What number?", second.ResultText);
    }

    [Theory]
    [InlineData("error")]
    [InlineData("crash")]
    [InlineData("hang")]
    public async Task A_chat_prompt_waiting_on_a_clear_that_fails_runs_once_on_the_restarted_process(string fault)
    {
        var account = await StartAccountAsync("konsole.claude.turn-timeout = 5s"); // how long a /clear may stay silent (the turns before it run within it on a slow machine)
        var first = NewPrompt($"[[clear:{fault}]] Remember 42");
        var waiting = NewPrompt("What number?");

        account.Tell(new SubmitPrompt(first.Prompt, ProcessMode.Chat));
        account.Tell(new SubmitPrompt(waiting.Prompt, ProcessMode.Chat)); // it waits on the /clear after the first
        Assert.Equal("echo: Remember 42", (await first.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        var served = await waiting.Caller.ReceiveTurnAsync(TurnTimeout);

        // It never reached the CLI (its /clear had not finished): nothing is lost, and it ran on an empty process.
        Assert.Null(served.Failed);
        Assert.Equal("echo: What number?", served.ResultText);
        Assert.Equal(1, (await StatusAsync()).Processes[1].Restarts);
        await waiting.Caller.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100)); // exactly one end
    }

    [Fact]
    public async Task A_prompt_its_lost_process_never_sent_during_the_drain_is_told_it_does_not_start()
    {
        // How long a /clear may stay silent: the drain must begin before then, with the waiting prompt started.
        var account = await StartAccountAsync("konsole.claude.turn-timeout = 5s");
        var first = NewPrompt("[[clear:hang]] Remember 42");
        var waiting = NewPrompt("What number?");
        account.Tell(new SubmitPrompt(first.Prompt, ProcessMode.Chat));
        account.Tell(new SubmitPrompt(waiting.Prompt, ProcessMode.Chat));
        await first.Caller.ReceiveTurnAsync(TurnTimeout);
        await AwaitAssertAsync(async () => Assert.Equal((true, 0), ((await StatusAsync()).Processes[1].Busy, (await StatusAsync()).QueueDepth)),
            TurnTimeout); // the waiting one started: it waits on the /clear that never answers

        account.Tell(new Drain(TimeSpan.FromMinutes(1)));
        await _parent.FishForMessageAsync<AccountStatus>(s => s.Processes[1].Restarts == 1, TurnTimeout); // the /clear's process killed
        Watch(account);
        Sys.Stop(account);
        await ExpectTerminatedAsync(account, TurnTimeout);

        // Back in the queue, it does not start before the host stops: as one queued when the drain began, its caller is told.
        var told = await waiting.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.True(told.NotStarted);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, told.Failed?.Code);
    }

    [Fact]
    public async Task A_prompt_whose_process_is_lost_twice_before_it_reaches_the_cli_fails_once_instead_of_failing_the_account()
    {
        var account = await StartAccountAsync("konsole.claude.turn-timeout = 2s");
        var (prompt, caller) = NewPrompt("on a model the CLI is slow to switch to");

        // Its set_model answers only after the watchdog killed the process, on every process it lands on.
        var turn = await RunAsync(account, (prompt with { Model = "[[delay:60000]]sonnet" }, caller), ProcessMode.Chat);

        Assert.Equal(TurnErrorCodes.ProcessCrashed, turn.Failed?.Code);
        Assert.Contains("set_model", turn.Failed!.Message);
        Assert.Contains("the prompt never reached the CLI", turn.Failed.Message);
        Assert.DoesNotContain("during the turn", turn.Failed.Message);
        var status = await StatusAsync();
        Assert.Equal(2, status.Processes[1].Restarts); // it ran again once, on the first restart
        Assert.NotEqual(AccountState.Failed, status.State);
        await caller.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100)); // exactly one end
    }

    [Fact]
    public async Task An_interrupt_that_reaches_its_process_after_it_was_lost_ends_the_prompt_it_had_not_sent_instead_of_running_it_later()
    {
        // The process fails before it reads the interrupt the account forwarded: two actors race, so stand-ins stage it.
        var processes = CreateTestProbe("processes");
        var account = await StartAccountAsync(processProps: _ => Props.Create(() => new StandInProcess(processes.Ref)));
        var (prompt, caller) = NewPrompt("waits on a /clear that crashes");
        account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
        await processes.ExpectMsgAsync<RunTurn>(r => Assert.Equal(prompt.PromptId, r.Prompt.PromptId), TurnTimeout);
        var process = processes.LastSender;

        account.Tell(new InterruptPrompt(prompt.PromptId));
        await processes.ExpectMsgAsync<InterruptTurn>(TurnTimeout);
        process.Tell(new StandInProcess.Say(new ProcessExited(3, null, "the CLI exited with code 3"))); // it had not sent the prompt
        await _parent.FishForMessageAsync<AccountStatus>(s => s.Processes[0] is { Restarts: 1, ProcessId: not null }, TurnTimeout);
        var next = NewPrompt("next");
        account.Tell(new SubmitPrompt(next.Prompt, ProcessMode.Full));

        // The restarted process gets the next prompt, not the interrupted one again.
        Assert.Equal(next.Prompt.PromptId, (await processes.ExpectMsgAsync<RunTurn>(TurnTimeout)).Prompt.PromptId);
        var turn = await caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal(TurnErrorCodes.Interrupted, turn.Failed?.Code);
        Assert.Empty(turn.Queued);
    }

    [Fact]
    public async Task A_prompt_put_back_once_then_interrupted_and_lost_again_before_it_reached_the_cli_ends_interrupted()
    {
        var processes = CreateTestProbe("processes");
        var account = await StartAccountAsync(processProps: _ => Props.Create(() => new StandInProcess(processes.Ref)));
        var (prompt, caller) = NewPrompt("waits on a /clear that crashes, twice");
        account.Tell(new SubmitPrompt(prompt, ProcessMode.Full));
        await processes.ExpectMsgAsync<RunTurn>(r => Assert.Equal(prompt.PromptId, r.Prompt.PromptId), TurnTimeout);
        processes.LastSender.Tell(new StandInProcess.Say(new ProcessExited(3, null, "the CLI exited with code 3"))); // not sent: put back
        await processes.ExpectMsgAsync<RunTurn>(r => Assert.Equal(prompt.PromptId, r.Prompt.PromptId), TurnTimeout); // on the new process
        var second = processes.LastSender;

        account.Tell(new InterruptPrompt(prompt.PromptId));
        await processes.ExpectMsgAsync<InterruptTurn>(TurnTimeout);
        second.Tell(new StandInProcess.Say(new ProcessExited(3, null, "the CLI exited with code 3"))); // lost again, still not sent

        var turn = await caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal(TurnErrorCodes.Interrupted, turn.Failed?.Code); // as asked, not process_crashed: it never ran
        await caller.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100)); // exactly one end
    }

    [Fact]
    public async Task A_new_conversations_prompt_lost_twice_before_it_reached_the_cli_leaves_its_session_nothing_of_another_sessions_conversation()
    {
        var processes = CreateTestProbe("processes");
        var account = await StartAccountAsync(processProps: _ => Props.Create(() => new StandInProcess(processes.Ref)));
        // Session T's turn leaves its conversation on the full process; its transcript is there, so a restart resumes it.
        var transcripts = Directory.CreateDirectory(Path.Combine(Sandbox.Accounts[0].ConfigDir, "projects", "work"));
        File.WriteAllText(Path.Combine(transcripts.FullName, "conv-t.jsonl"), "");
        var theirs = NewPrompt("T's turn", session: "ses-t");
        account.Tell(new SubmitPrompt(theirs.Prompt, ProcessMode.Full));
        await processes.ExpectMsgAsync<RunTurn>(r => Assert.Equal(theirs.Prompt.PromptId, r.Prompt.PromptId), TurnTimeout);
        processes.LastSender.Tell(new StandInProcess.Say(new TurnFinished(theirs.Prompt.PromptId, "conv-t", IsError: false)));

        // Session S's first prompt empties the process first; the process is lost before that /clear ends, twice.
        var first = NewPrompt("S's first", session: "ses-s");
        account.Tell(new SubmitPrompt(first.Prompt, ProcessMode.Full));
        for (var loss = 0; loss < 2; loss++)
        {
            var run = await processes.ExpectMsgAsync<RunTurn>(r => Assert.Equal(first.Prompt.PromptId, r.Prompt.PromptId), TurnTimeout);
            Assert.True(run.ClearFirst);
            processes.LastSender.Tell(new StandInProcess.Say(new ProcessExited(3, "conv-t", "the CLI exited with code 3")));
        }
        Assert.Equal(TurnErrorCodes.ProcessCrashed, (await first.Caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);

        // The restarted process resumed T's conversation: S's next prompt empties it first, it does not go on in it.
        var next = NewPrompt("S's next", session: "ses-s");
        account.Tell(new SubmitPrompt(next.Prompt, ProcessMode.Full));
        var nextRun = await processes.ExpectMsgAsync<RunTurn>(r => Assert.Equal(next.Prompt.PromptId, r.Prompt.PromptId), TurnTimeout);
        Assert.True(nextRun.ClearFirst); // before: false, S's prompt ran on in session T's conversation
    }

    [Fact]
    public async Task Status_shows_the_busy_session_and_the_queue_and_state_changes_are_published()
    {
        var states = EventsOf(typeof(AccountStateChanged));
        var account = await StartAccountAsync();
        var running = NewPrompt($"{Long} busy", session: "ses-busy");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        account.Tell(new SubmitPrompt(NewPrompt("waits").Prompt, ProcessMode.Full));

        var busy = await _parent.FishForMessageAsync<AccountStatus>(s => s.QueueDepth == 1, TurnTimeout);

        Assert.Equal(AccountState.Busy, busy.State);
        Assert.True(busy.Busy);
        Assert.Equal("ses-busy", busy.ActiveSessionId);
        await states.FishForMessageAsync<AccountStateChanged>(e => e.State == AccountState.Busy, TurnTimeout);
        account.Tell(new InterruptPrompt(running.Prompt.PromptId));
        var idle = await states.FishForMessageAsync<AccountStateChanged>(e => e.State == AccountState.Idle, TurnTimeout);
        Assert.Equal(AccountState.Busy, idle.Previous);
    }

    [Fact]
    public async Task Stopping_the_account_ends_every_prompt_it_holds_with_account_unavailable()
    {
        var parent = await StartAccountAsync();
        var running = NewPrompt($"{Long} busy");
        var queued = NewPrompt("queued");
        parent.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        parent.Tell(new SubmitPrompt(queued.Prompt, ProcessMode.Full));
        await queued.Caller.ExpectMsgAsync<PromptQueued>();

        Sys.Stop(parent);

        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await running.Caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await queued.Caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);
    }

    [Fact]
    public async Task A_refresh_waits_for_the_running_turn_and_the_next_prompt_waits_for_the_refresh()
    {
        var refreshed = EventsOf(typeof(OAuthTokenRefreshed));
        await using var tokens = await TokensForAlphaAsync();
        tokens.Delay = TimeSpan.FromMilliseconds(500); // a prompt that did not wait would start inside this window
        var account = await StartAccountAsync($"konsole.oauth.token-endpoint = \"{tokens.Url}\"");
        var running = NewPrompt($"{Long} busy");
        account.Tell(new SubmitPrompt(running.Prompt, ProcessMode.Full));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);

        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        var next = NewPrompt("after the refresh", session: "other");
        account.Tell(new SubmitPrompt(next.Prompt, ProcessMode.Chat)); // another process, idle: it still waits

        Assert.Equal(AccountState.Busy, (await StatusAsync()).State);
        Assert.Empty(tokens.Requests);
        account.Tell(new InterruptPrompt(running.Prompt.PromptId));
        await next.Caller.FishForMessageAsync(m => m is TurnOutput, TurnTimeout);
        Assert.Equal(200, Assert.Single(tokens.Requests).Status); // answered before the prompt started
        Assert.Equal("echo: after the refresh", (await next.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        var done = await refreshed.ExpectMsgAsync<OAuthTokenRefreshed>(TurnTimeout);
        Assert.InRange(done.ExpiresAt, DateTimeOffset.UtcNow.AddHours(7.9), DateTimeOffset.UtcNow.AddHours(8.1));
        var credentials = await File.ReadAllTextAsync(Path.Combine(Sandbox.Accounts[0].ConfigDir, ".credentials.json"));
        Assert.Contains(tokens.LatestAccessToken!, credentials);
        await AwaitAssertAsync(async () => Assert.Equal(done.ExpiresAt.ToUnixTimeMilliseconds(), (await StatusAsync()).ExpiresAt?.ToUnixTimeMilliseconds()), TurnTimeout);
    }

    [Fact]
    public async Task A_failed_refresh_is_reported_and_the_prompts_go_on()
    {
        var failed = EventsOf(typeof(OAuthRefreshFailed));
        await using var tokens = await FakeTokenEndpoint.StartAsync(); // it knows no refresh token: invalid_grant
        var account = await StartAccountAsync($"konsole.oauth.token-endpoint = \"{tokens.Url}\"");

        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);

        var failure = await failed.ExpectMsgAsync<OAuthRefreshFailed>(TurnTimeout);
        Assert.False(failure.Retryable);
        Assert.Contains("invalid_grant", failure.Reason);
        Assert.DoesNotContain("sk-ant", failure.Reason);
        Assert.Equal("echo: still served", (await RunAsync(account, NewPrompt("still served"))).ResultText);
        Assert.NotNull((await StatusOf(account)).OAuthError);

        // A new login (as claude login writes it): the failure no longer shows once the account reads it (after each turn).
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], DateTimeOffset.UtcNow.AddHours(8));
        await RunAsync(account, NewPrompt("after the new login"));
        await AwaitAssertAsync(async () => Assert.Null((await StatusOf(account)).OAuthError), TurnTimeout);
    }

    [Fact]
    public async Task A_token_close_to_expiry_is_refreshed_on_its_own_once_even_when_asked_at_the_same_time_and_no_token_is_logged()
    {
        var refreshed = EventsOf(typeof(OAuthTokenRefreshed));
        var logs = EventsOf(typeof(Akka.Event.LogEvent));
        await using var tokens = await TokensForAlphaAsync();
        tokens.Hold(); // both triggers meet one refresh in flight
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], DateTimeOffset.UtcNow.AddMinutes(30)); // under the 1 h threshold

        // Asked at once, while the account's own refresh (it reads its credentials as it starts) is starting or in flight.
        var account = AccountOn(tokens);
        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        await tokens.WaitForRequestAsync(_ => true, TurnTimeout);
        tokens.Release();

        var done = await refreshed.ExpectMsgAsync<OAuthTokenRefreshed>(TurnTimeout);
        await refreshed.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
        Assert.Equal(200, Assert.Single(tokens.Requests).Status);
        Assert.InRange(done.ExpiresAt, DateTimeOffset.UtcNow.AddHours(7), DateTimeOffset.UtcNow.AddHours(9));
        var file = Path.Combine(Sandbox.Accounts[0].ConfigDir, ".credentials.json");
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var secrets = new[] { Sandbox.Accounts[0].AccessToken, Sandbox.Accounts[0].RefreshToken, tokens.LatestAccessToken!, tokens.LatestRefreshToken! };
        var logged = new List<string>();
        while (logs.HasMessages)
            logged.Add((await logs.ExpectMsgAsync<Akka.Event.LogEvent>()).ToString());
        Assert.Contains(logged, l => l.Contains("OAuth token refreshed"));
        Assert.DoesNotContain(logged, l => secrets.Any(l.Contains) || l.Contains("sk-ant-o"));
        Output.WriteLine($"FIGURES two refresh triggers at once: {tokens.Requests.Count} token request(s) (status " +
            $"{string.Join(", ", tokens.Requests.Select(r => r.Status))}), 1 refreshed event, the file's mode " +
            $"{(OperatingSystem.IsWindows() ? "n/a" : Convert.ToString((int)File.GetUnixFileMode(file), 8))}, {logged.Count} log lines, none with a token");
    }

    [Fact]
    public async Task Tokens_that_live_less_than_the_refresh_threshold_are_refreshed_once_not_over_and_over()
    {
        var refreshed = EventsOf(typeof(OAuthTokenRefreshed));
        await using var tokens = await TokensForAlphaAsync();
        tokens.ExpiresIn = TimeSpan.FromMinutes(30); // under the 1 h threshold
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], DateTimeOffset.UtcNow.AddMinutes(30));

        var account = AccountOn(tokens);

        await refreshed.ExpectMsgAsync<OAuthTokenRefreshed>(TurnTimeout);
        // Its read of the new file runs off the actor and lands within this second: were the token then due again, it would show.
        await refreshed.ExpectNoMsgAsync(TimeSpan.FromSeconds(1)); // the next one is due at half the new token's life
        Assert.Single(tokens.Requests);
    }

    [Fact]
    public async Task A_refresh_holds_the_hosts_stop_while_it_runs_and_none_starts_once_the_host_stops()
    {
        await using var tokens = await TokensForAlphaAsync();
        tokens.Hold();
        var account = AccountOn(tokens);

        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        await AwaitAssertAsync(async () => Assert.True((await StatusOf(account)).RefreshRunning), TurnTimeout);
        tokens.Release();
        await AwaitAssertAsync(async () => Assert.False((await StatusOf(account)).RefreshRunning), TurnTimeout);
        account.Tell(new Drain(TimeSpan.FromSeconds(30)));
        var refused = await account.Ask<RefreshRefused>(RefreshCredentials.Instance, TurnTimeout); // it was told "scheduled"

        Assert.Equal("shutting_down", refused.Code);
        Assert.False((await StatusOf(account)).RefreshRunning);
        Assert.Single(tokens.Requests);
    }

    [Fact]
    public async Task A_refresh_in_flight_when_the_account_is_restarted_holds_its_prompts_and_none_other_starts()
    {
        var refreshed = EventsOf(typeof(OAuthTokenRefreshed), typeof(OAuthRefreshFailed));
        await using var tokens = await TokensForAlphaAsync();
        tokens.Hold();
        var account = AccountOn(tokens); // its parent restarts it on an exception, as the router does
        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        await tokens.WaitForRequestAsync(_ => true, TurnTimeout);

        account.Tell(new SubmitPrompt(null!, ProcessMode.Full)); // as a bug would: the account throws, and is restarted
        await AwaitAssertAsync(async () => Assert.All((await StatusOf(account)).Processes, p => Assert.NotNull(p.ProcessId)), TurnTimeout);
        var prompt = NewPrompt("after the refresh");
        account.Tell(new SubmitPrompt(prompt.Prompt, ProcessMode.Full));
        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout); // met by the one in flight

        var during = await StatusOf(account);
        Assert.True(during.RefreshRunning); // the host's stop waits for it
        Assert.Equal((AccountState.Refreshing, 1), (during.State, during.QueueDepth)); // the prompt waits for it
        tokens.Release();
        Assert.Equal("echo: after the refresh", (await prompt.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        await refreshed.ExpectMsgAsync<OAuthTokenRefreshed>(TurnTimeout);
        await refreshed.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
        Assert.Equal(200, Assert.Single(tokens.Requests).Status);
    }

    [Fact]
    public async Task A_refresh_that_failed_for_a_passing_reason_is_retried_with_backoff_and_a_refused_one_is_not()
    {
        var events = EventsOf(typeof(OAuthTokenRefreshed), typeof(OAuthRefreshFailed));
        await using var tokens = await TokensForAlphaAsync();
        tokens.FailNext(503, times: 2);
        tokens.Hold();
        var account = await StartAccountAsync(
            $"konsole.oauth {{ token-endpoint = \"{tokens.Url}\", retry-min-backoff = 50ms, retry-max-backoff = 200ms }}");

        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        await tokens.WaitForRequestAsync(_ => true, TurnTimeout);
        tokens.Release(holdLater: true); // the first fails; its retry waits, so the error stays while it is looked at

        Assert.True((await events.ExpectMsgAsync<OAuthRefreshFailed>(TurnTimeout)).Retryable);
        Assert.NotNull((await StatusAsync()).OAuthError);
        tokens.Release();
        Assert.True((await events.ExpectMsgAsync<OAuthRefreshFailed>(TurnTimeout)).Retryable);
        await events.ExpectMsgAsync<OAuthTokenRefreshed>(TurnTimeout);
        Assert.Equal([503, 503, 200], tokens.Requests.Select(r => r.Status));
        await AwaitAssertAsync(async () => Assert.Null((await StatusAsync()).OAuthError), TurnTimeout);

        tokens.FailNext(400); // the refresh token is refused: a person must log in again
        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        Assert.False((await events.ExpectMsgAsync<OAuthRefreshFailed>(TurnTimeout)).Retryable);
        await events.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
        Assert.Equal(4, tokens.Requests.Count);
    }

    [Fact]
    public async Task A_rejected_rate_limit_holds_the_account_rate_limited_until_it_resets()
    {
        var states = EventsOf(typeof(AccountStateChanged));
        var account = await StartAccountAsync();

        var hit = await RunAsync(account, NewPrompt("[[rate-limit:1]] over"));

        Assert.True(hit.Completed!.Result.IsError);
        var limited = await states.FishForMessageAsync<AccountStateChanged>(s => s.State == AccountState.RateLimited, TurnTimeout);
        Assert.StartsWith("rate-limited until ", limited.Reason);
        await states.FishForMessageAsync<AccountStateChanged>(s => s.Previous == AccountState.RateLimited && s.State != AccountState.RateLimited, TurnTimeout);
        Assert.Equal(AccountState.Idle, (await StatusAsync()).State);
    }

    [Fact]
    public async Task A_rejected_rate_limit_hands_on_a_prompt_still_waiting_for_its_sessions_confirmation()
    {
        var account = await StartAccountAsync();
        var session = CreateTestProbe();
        var waiting = new Prompt(Prompt.NewId(), "ses-1", "waits for its confirmation", null, session.Ref, ConfirmDispatch: true);
        account.Tell(new SubmitPrompt(waiting, ProcessMode.Full));
        await session.ExpectMsgAsync<DispatchRequested>(TurnTimeout);

        await RunAsync(account, NewPrompt("[[rate-limit:60]] over"), ProcessMode.Chat);

        var handedBack = await _parent.FishForMessageAsync<PromptHandedBack>(_ => true, TurnTimeout);
        Assert.Equal((waiting.PromptId, ProcessMode.Full), (handedBack.Prompt.PromptId, handedBack.Mode));
        account.Tell(new DispatchConfirmed(waiting.PromptId)); // late: the prompt is no longer this account's
        var status = await StatusAsync();
        Assert.Equal((false, 0), (status.Processes[0].Busy, status.QueueDepth));
    }

    [Fact]
    public async Task A_rejection_is_shown_until_it_resets_though_another_process_reports_allowed_meanwhile_and_is_gone_after()
    {
        var states = EventsOf(typeof(AccountStateChanged));
        var account = await StartAccountAsync();
        var slow = NewPrompt("[[delay:1000]] sent before the limit");
        account.Tell(new SubmitPrompt(slow.Prompt, ProcessMode.Chat)); // its turn ends during the hold, reporting "allowed"

        var hit = await RunAsync(account, NewPrompt("[[rate-limit:10]] over")); // outlasts the slow turn on a slow machine
        Assert.StartsWith("echo: sent before the limit", (await slow.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        var during = (await StatusAsync()).RateLimit;
        await states.FishForMessageAsync<AccountStateChanged>(s => s.Previous == AccountState.RateLimited && s.State != AccountState.RateLimited, TurnTimeout);

        Assert.True(hit.Completed!.Result.IsError);
        Assert.Equal("rejected", during?.Status);
        Assert.NotNull(during!.ResetsAt);
        Assert.Null((await StatusAsync()).RateLimit); // shown as allowed: nothing known of a limit since it reset
    }

    [Fact]
    public async Task A_rejected_rate_limit_whose_reset_time_has_passed_ends_at_once_without_restarting_anything()
    {
        var states = EventsOf(typeof(AccountStateChanged));
        var account = await StartAccountAsync();
        var pids = (await StatusAsync()).Processes.Select(p => p.ProcessId).ToList();

        var hit = await RunAsync(account, NewPrompt("[[rate-limit:-60]] over"));

        Assert.True(hit.Completed!.Result.IsError);
        await states.FishForMessageAsync<AccountStateChanged>(s => s.Previous == AccountState.RateLimited && s.State != AccountState.RateLimited, TurnTimeout);
        Assert.StartsWith("echo: after", (await RunAsync(account, NewPrompt("after"))).ResultText);
        var status = await StatusAsync();
        Assert.Equal(AccountState.Idle, status.State);
        Assert.Equal(pids, status.Processes.Select(p => p.ProcessId).ToList()); // the account was not restarted by a failed timer
    }

    [Fact]
    public async Task An_api_key_account_has_nothing_to_refresh()
    {
        using var key = EnvironmentScope.Set(("KONSOLE_TEST_API_KEY", "sk-ant-api03-test-key"));
        var settings = Sandbox.Settings(FakeClaudeCli.Path);
        var account = Sys.ActorOf(AccountActor.Props(settings.Accounts[0] with { ApiKeyEnv = "KONSOLE_TEST_API_KEY" }, settings));

        var refused = await account.Ask<RefreshRefused>(RefreshCredentials.Instance, TurnTimeout);

        Assert.Equal(("alpha", "not_oauth"), (refused.AccountId, refused.Code));
    }

    [Fact]
    public async Task A_simulated_account_sends_its_made_up_login_to_no_token_endpoint()
    {
        var attempts = EventsOf(typeof(OAuthTokenRefreshed), typeof(OAuthRefreshFailed));
        await using var tokens = await FakeTokenEndpoint.StartAsync();
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], DateTimeOffset.UtcNow.AddMinutes(5)); // due for a refresh
        var account = AccountOn(tokens, a => a with { Simulated = true });

        var refused = await account.Ask<RefreshRefused>(RefreshCredentials.Instance, TurnTimeout);
        await AwaitAssertAsync(async () => Assert.NotNull((await StatusOf(account)).ExpiresAt), TurnTimeout);
        await attempts.ExpectNoMsgAsync(TimeSpan.FromSeconds(1)); // nor on its own, though its token is due

        Assert.Equal(("alpha", "not_oauth"), (refused.AccountId, refused.Code));
        Assert.Contains("simulated", refused.Reason);
        Assert.Empty(tokens.Requests);
    }

    [Fact]
    public async Task A_worker_whose_queued_prompt_is_interrupted_during_a_refresh_gives_its_place_to_the_waiting_one()
    {
        await using var tokens = await TokensForAlphaAsync();
        var account = await StartAccountAsync($"konsole.oauth.token-endpoint = \"{tokens.Url}\"\nkonsole.sessions.max-workers = 1");
        Assert.Equal("echo: a", (await RunAsync(account, NewPrompt("a", session: "w1"), ProcessMode.Worker)).ResultText);
        tokens.Hold();
        await account.Ask<RefreshScheduled>(RefreshCredentials.Instance, TurnTimeout);
        await tokens.WaitForRequestAsync(_ => true, TurnTimeout);

        var (interrupted, interruptedCaller) = NewPrompt("waits for the refresh", session: "w1");
        account.Tell(new SubmitPrompt(interrupted, ProcessMode.Worker));
        await interruptedCaller.ExpectMsgAsync<PromptQueued>(TurnTimeout);
        var waiting = NewPrompt("b", session: "w2");
        account.Tell(new SubmitPrompt(waiting.Prompt, ProcessMode.Worker)); // w1 is not idle: a prompt waits for it
        await waiting.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout);
        account.Tell(new InterruptPrompt(interrupted.PromptId)); // now it is
        Assert.Equal(TurnErrorCodes.Interrupted, (await interruptedCaller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);
        tokens.Release();

        Assert.Equal("echo: b", (await waiting.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
    }

    [Fact]
    public async Task A_parked_worker_without_prompts_is_not_released_and_keeps_its_conversation_for_a_prompt_following_its_last_turn()
    {
        var account = await StartAccountAsync("konsole.sessions.max-workers = 1");
        var first = NewPrompt("Remember 42", session: "w1");
        Assert.Equal("echo: Remember 42", (await RunAsync(account, first, ProcessMode.Worker)).ResultText);
        Assert.Equal("echo: b", (await RunAsync(account, NewPrompt("b", session: "w2"), ProcessMode.Worker)).ResultText); // w1 is parked

        // As a router would with a view from before w1's last prompt was interrupted (or ran) where it waited.
        var router = CreateTestProbe();
        account.Tell(new ReleaseWaitingWorker("w1"), router.Ref);
        Assert.Equal("w1", (await router.ExpectMsgAsync<WorkerNotReleased>(TurnTimeout)).SessionId);

        // Sent while the first was still to run, for all its session knew: it continues the conversation w1 holds.
        var (next, caller) = NewPrompt("What number?", session: "w1");
        account.Tell(new SubmitPrompt(next with { After = first.Prompt.PromptId }, ProcessMode.Worker));
        Assert.Equal("echo: What number? [history: Remember 42]", (await caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
    }

    [Fact]
    public async Task A_worker_whose_turn_ended_in_a_crash_gives_its_place_to_the_waiting_one_and_resumes_its_conversation_later()
    {
        var processes = CreateTestProbe("processes");
        var specs = CreateTestProbe("specs");
        var account = await StartAccountAsync("konsole.sessions.max-workers = 1\nkonsole.claude.restart { min-backoff = 1h, max-backoff = 1h }",
            spec =>
            {
                specs.Tell(spec);
                return Props.Create(() => new StandInProcess(processes.Ref));
            });
        var (crashing, crashingCaller) = NewPrompt("w1", session: "w1");
        account.Tell(new SubmitPrompt(crashing, ProcessMode.Worker));
        await processes.FishForMessageAsync<RunTurn>(r => r.Prompt.PromptId == crashing.PromptId, TurnTimeout);
        var w1 = processes.LastSender;
        var (waiting, waitingCaller) = NewPrompt("w2", session: "w2");
        account.Tell(new SubmitPrompt(waiting, ProcessMode.Worker));
        await waitingCaller.ExpectMsgAsync<PromptQueued>(TurnTimeout);

        w1.Tell(new StandInProcess.Say(new ProcessExited(1, "conv-w1", "the CLI exited with code 1", SentTurn: crashing.PromptId)));
        Assert.Equal(TurnErrorCodes.ProcessCrashed, (await crashingCaller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);

        // Its restart would come in an hour: its place goes to w2 now, and w1 resumes its conversation once w2's turn has ended.
        await processes.FishForMessageAsync<RunTurn>(r => r.Prompt.PromptId == waiting.PromptId, TurnTimeout);
        var w2 = processes.LastSender;
        var (next, _) = NewPrompt("w1 again", session: "w1");
        account.Tell(new SubmitPrompt(next, ProcessMode.Worker));
        w2.Tell(new StandInProcess.Say(new TurnFinished(waiting.PromptId, "conv-w2", false)));
        await processes.FishForMessageAsync<RunTurn>(r => r.Prompt.PromptId == next.PromptId, TurnTimeout);
        Assert.Equal("conv-w1", (await specs.FishForMessageAsync<HotProcessSpec>(s => s.Mode == ProcessMode.Worker && s.ResumeSessionId is not null, TurnTimeout)).ResumeSessionId);
    }

    /// <summary>A fake token endpoint that takes the refresh token of alpha's login.</summary>
    private async Task<FakeTokenEndpoint> TokensForAlphaAsync()
    {
        var tokens = await FakeTokenEndpoint.StartAsync();
        tokens.Accept(Sandbox.Accounts[0].RefreshToken);
        return tokens;
    }

    /// <summary>An account (not waited for) whose OAuth refreshes go to <paramref name="tokens"/>.</summary>
    private IActorRef AccountOn(FakeTokenEndpoint tokens, Func<AccountSettings, AccountSettings>? change = null)
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: $"konsole.oauth.token-endpoint = \"{tokens.Url}\"");
        return Sys.ActorOf(AccountActor.Props(change is null ? settings.Accounts[0] : change(settings.Accounts[0]), settings));
    }

    private static Task<AccountStatus> StatusOf(IActorRef account) => account.Ask<AccountStatus>(GetStatus.Instance, TurnTimeout);

    private async Task<IActorRef> StartAccountAsync(string extraHocon = "", Func<HotProcessSpec, Props>? processProps = null)
    {
        _parent = CreateTestProbe("parent");
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: extraHocon);
        var props = processProps is null
            ? AccountActor.Props(settings.Accounts[0], settings)
            : AccountActor.Props(settings.Accounts[0], settings, processProps);
        var account = Sys.ActorOf(ForwardingParent.Props(props, _parent.Ref));
        await _parent.FishForMessageAsync<AccountStatus>(s => s.Warm, TurnTimeout);
        _account = account;
        return account;
    }

    private async Task<AccountStatus> StartAsync()
    {
        await StartAccountAsync();
        return await StatusAsync();
    }

    private Task<AccountStatus> StatusAsync() => _account.Ask<AccountStatus>(GetStatus.Instance, TimeSpan.FromSeconds(5));

    private static async Task<TurnRecord> RunAsync(IActorRef account, (Prompt Prompt, TestProbe Caller) p, ProcessMode mode = ProcessMode.Full)
    {
        account.Tell(new SubmitPrompt(p.Prompt, mode));
        return await p.Caller.ReceiveTurnAsync(TurnTimeout);
    }

    /// <summary>
    /// Stands in for a <see cref="HotProcessActor"/>: ready at once, it hands what its account sends
    /// it to a probe, and tells its account what the spec makes it <see cref="Say"/> (a <see cref="ProcessExited"/> stops it).
    /// </summary>
    private sealed class StandInProcess : ReceiveActor
    {
        public StandInProcess(IActorRef probe)
        {
            Receive<Say>(m =>
            {
                Context.Parent.Tell(m.Message);
                if (m.Message is ProcessExited)
                    Context.Stop(Self);
            });
            ReceiveAny(m => probe.Tell(m));
        }

        protected override void PreStart() => Context.Parent.Tell(new ProcessReady(Environment.ProcessId));

        public sealed record Say(object Message);
    }
}
