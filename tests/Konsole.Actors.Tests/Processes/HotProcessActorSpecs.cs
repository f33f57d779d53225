using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.TestKit;
using Konsole.Actors.Accounts;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Processes.HotProcessProtocol;

namespace Konsole.Actors.Tests.Processes;

/// <summary>HotProcessActor over real FakeClaude processes, with a probe standing in for its account.</summary>
public sealed class HotProcessActorSpecs : KonsoleSpec
{
    private static readonly TimeSpan Turn = TurnTimeout;
    private readonly TestProbe _account;

    public HotProcessActorSpecs(ITestOutputHelper output) : base(output, accounts: 1)
    {
        _account = CreateTestProbe("account");
    }

    [Fact]
    public async Task Starts_warm_and_streams_a_turn_in_order_ending_with_its_result()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (prompt, caller) = NewPrompt("hello there");

        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);

        Assert.Equal(["command_lifecycle", "command_lifecycle", "system", "assistant", "rate_limit_event", "result"],
            turn.Outputs.Select(o => o.Frame.Type));
        Assert.Same(turn.Outputs[^1].Frame, turn.Completed!.Result);
        Assert.Equal(prompt.PromptId, turn.Completed.Result.UserMessageUuid);
        Assert.Equal("echo: hello there", turn.ResultText);
        var init = turn.Outputs.Single(o => o.Frame.IsInit).Frame;
        Assert.Equal(new ConversationRef(init.SessionId!, "alpha", Sandbox.Accounts[0].ConfigDir), turn.Completed.Conversation);
        var finished = await _account.FishForMessageAsync<TurnFinished>(_ => true);
        Assert.Equal(new TurnFinished(prompt.PromptId, init.SessionId, false), finished);
    }

    [Fact]
    public async Task A_late_result_of_another_prompt_is_not_a_line_of_the_running_turn_nor_its_end()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (prompt, caller) = NewPrompt("[[stray-result]] hello there");

        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);

        // Before: streamed as one of its lines (its session then showed it as this prompt's result event, mid-turn).
        Assert.Single(turn.Outputs, o => o.Frame.IsResult);
        Assert.Equal(prompt.PromptId, turn.Completed!.Result.UserMessageUuid);
        Assert.Equal("echo: hello there", turn.ResultText);
    }

    [Fact]
    public async Task A_second_turn_on_the_same_process_remembers_the_first()
    {
        var process = await StartAsync(ProcessMode.Full);

        var first = await RunAsync(process, "Remember 42");
        var second = await RunAsync(process, "What number?");

        Assert.Equal("echo: What number? [history: Remember 42]", second.ResultText);
        Assert.Equal(first.Completed!.Conversation, second.Completed!.Conversation);
    }

    [Fact]
    public async Task Chat_processes_have_no_tools_and_every_turn_starts_empty()
    {
        var process = await StartAsync(ProcessMode.Chat);

        var first = await RunAsync(process, "Remember 42");
        var second = await RunAsync(process, "What number?");

        Assert.Contains("\"tools\":[]", first.Outputs.Single(o => o.Frame.IsInit).Frame.Raw);
        Assert.Equal("echo: What number?", second.ResultText);
        Assert.Null(second.Completed!.Conversation);
    }

    [Fact]
    public async Task Clear_first_starts_a_new_conversation_on_the_same_process()
    {
        var process = await StartAsync(ProcessMode.Full);
        var first = await RunAsync(process, "Remember 42");

        var (prompt, caller) = NewPrompt("What number?");
        process.Tell(new RunTurn(prompt, ClearFirst: true));
        var second = await caller.ReceiveTurnAsync(Turn);

        Assert.Equal("echo: What number?", second.ResultText);
        Assert.NotEqual(first.Completed!.Conversation!.SessionId, second.Completed!.Conversation!.SessionId);
        Assert.DoesNotContain(second.Outputs, o => o.Frame.Type == "conversation_reset"); // the clear is not part of the turn
    }

    [Fact]
    public async Task Stopped_during_a_turn_it_interrupts_the_turn_so_the_cli_ends_at_once_not_after_its_work()
    {
        var spec = Spec(ProcessMode.Full);
        var process = await StartAsync(spec with { Claude = spec.Claude with { StopGrace = TimeSpan.FromMinutes(2) } });
        var (prompt, caller) = NewPrompt("[[delay:600000]] a long piece of work");
        process.Tell(new RunTurn(prompt, ClearFirst: false));
        await caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, Turn); // it runs

        Sys.Stop(process); // as its account stops it: a worker session closed

        // Left to finish its turn, the CLI would run on until stop-grace (2 minutes) had passed.
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task A_chat_process_whose_clear_fails_is_killed_so_no_chat_turn_runs_on_the_previous_conversation()
    {
        var process = await StartAsync(ProcessMode.Chat);
        Watch(process);

        await RunAsync(process, "[[clear:error]] Remember 42"); // the /clear after it answers with an error, the conversation kept

        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Contains("/clear", exited.Reason);
        await ExpectTerminatedAsync(process);
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task A_turn_whose_clear_fails_never_runs_on_the_previous_conversation_and_is_left_to_its_account_as_never_sent()
    {
        var process = await StartAsync(ProcessMode.Full);
        Watch(process);
        await RunAsync(process, "[[clear:error]] Remember 42");

        var (prompt, caller) = NewPrompt("What number?");
        process.Tell(new RunTurn(prompt, ClearFirst: true));

        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Contains("/clear", exited.Reason);
        Assert.Null(exited.TurnReported);
        Assert.Null(exited.SentTurn); // the prompt never reached the CLI: its account runs it on the next process
        await ExpectTerminatedAsync(process);
        Assert.False(caller.HasMessages); // the privacy breach would be a turn here that saw "Remember 42"
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task A_chat_process_that_crashes_in_its_clear_is_reported_and_restarted_by_its_account()
    {
        var process = await StartAsync(ProcessMode.Chat);
        Watch(process);

        await RunAsync(process, "[[clear:crash]] Remember 42");

        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Equal(3, exited.ExitCode);
        Assert.Null(exited.TurnReported);
        await ExpectTerminatedAsync(process);
    }

    [Fact]
    public async Task A_chat_clear_that_never_answers_gets_its_process_killed_with_no_turn_waiting()
    {
        var process = await StartAsync(Spec(ProcessMode.Chat, turnTimeout: TimeSpan.FromSeconds(5)));
        Watch(process);

        await RunAsync(process, "[[clear:hang]] Remember 42");

        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Contains("/clear", exited.Reason);
        Assert.Contains("killed by the watchdog", exited.Reason);
        Assert.Null(exited.TurnReported);
        await ExpectTerminatedAsync(process);
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task A_clear_that_never_answers_is_killed_after_start_timeout_not_a_whole_turn_timeout()
    {
        var process = await StartAsync(Spec(ProcessMode.Chat, turnTimeout: TimeSpan.FromMinutes(10), startTimeout: TimeSpan.FromSeconds(5))); // also the boot's limit
        Watch(process);

        await RunAsync(process, "[[clear:hang]] Remember 42");

        // The chat prompts queued on its account would otherwise wait for the whole turn-timeout (10 minutes by default).
        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Contains("the /clear printed nothing for 5s (konsole.claude.start-timeout)", exited.Reason);
        await ExpectTerminatedAsync(process);
    }

    [Fact]
    public async Task A_chat_turn_waiting_for_a_clear_that_never_answers_is_left_to_its_account_as_never_sent_and_the_process_is_killed()
    {
        var process = await StartAsync(Spec(ProcessMode.Chat, turnTimeout: TimeSpan.FromSeconds(5)));
        Watch(process);
        await RunAsync(process, "[[clear:hang]] Remember 42");

        var (prompt, caller) = NewPrompt("What number?");
        process.Tell(new RunTurn(prompt, ClearFirst: false));

        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Contains("/clear", exited.Reason);
        Assert.Null(exited.TurnReported);
        Assert.Null(exited.SentTurn);
        await ExpectTerminatedAsync(process);
        Assert.False(caller.HasMessages);
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task Interrupt_ends_the_turn_with_its_result_and_the_process_serves_the_next()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (prompt, caller) = NewPrompt("[[chunks:200:50]] a long answer");
        process.Tell(new RunTurn(prompt, ClearFirst: false));
        await caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, Turn);

        process.Tell(new InterruptTurn(prompt.PromptId));
        var interrupted = await caller.ReceiveTurnAsync(Turn);

        Assert.Equal("error_during_execution", interrupted.Completed!.Result.Subtype);
        Assert.True(interrupted.Outputs.Count(o => o.Frame.Type == "assistant") < 200);
        Assert.Equal("echo: next", (await RunAsync(process, "next")).ResultText?[..10]);
    }

    [Fact]
    public async Task An_interrupt_right_after_the_prompt_ends_the_turn_whether_or_not_the_cli_had_started_it()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (prompt, caller) = NewPrompt("[[chunks:200:50]] interrupted early");

        process.Tell(new RunTurn(prompt, ClearFirst: false));
        process.Tell(new InterruptTurn(prompt.PromptId));
        var turn = await caller.ReceiveTurnAsync(Turn);

        // Still in the CLI's queue: dropped there, and it never ran. Already running: it ends with its result.
        if (turn.Failed is { } failed)
            Assert.Equal(TurnErrorCodes.Interrupted, failed.Code);
        else
            Assert.Equal("error_during_execution", turn.Completed!.Result.Subtype);
        await _account.FishForMessageAsync(m => m is TurnFinished f && f.PromptId == prompt.PromptId, Turn);
        Assert.StartsWith("echo: next", (await RunAsync(process, "next")).ResultText);
    }

    [Fact]
    public async Task A_silent_turn_is_interrupted_by_the_watchdog_ends_with_turn_timeout_and_the_process_serves_the_next()
    {
        var process = await StartAsync(Spec(ProcessMode.Full, turnTimeout: TimeSpan.FromSeconds(5))); // FakeClaude takes the prompt, and "next" runs, within it on a slow machine
        var (prompt, caller) = NewPrompt("[[delay:60000]] silent");

        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);

        Assert.Equal(TurnErrorCodes.TurnTimeout, turn.Failed?.Code);
        Assert.Contains("konsole.claude.turn-timeout", turn.Failed!.Message);
        Assert.Equal("error_during_execution", turn.Outputs[^1].Frame.Subtype); // the interrupted turn's own result came first
        Assert.Equal(new TurnFinished(prompt.PromptId, turn.Outputs[^1].Frame.SessionId, true),
            await _account.FishForMessageAsync<TurnFinished>(_ => true, Turn));
        Assert.StartsWith("echo: next", (await RunAsync(process, "next")).ResultText);
    }

    [Fact]
    public async Task A_turn_deaf_to_the_interrupt_is_killed_by_the_watchdog_and_reported_once_as_turn_timeout()
    {
        // Long enough for FakeClaude to take the prompt first on a loaded machine: an interrupt before that cancels it unstarted.
        var process = await StartAsync(Spec(ProcessMode.Full, turnTimeout: TimeSpan.FromSeconds(5), interruptTimeout: TimeSpan.FromSeconds(1)));
        var (prompt, caller) = NewPrompt("[[hang]] deaf");
        Watch(process);

        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);

        Assert.Equal(TurnErrorCodes.TurnTimeout, turn.Failed?.Code);
        Assert.Contains("no result 1s after an interrupt", turn.Failed!.Message);
        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Equal(prompt.PromptId, exited.TurnReported); // its account must not report it again
        await ExpectTerminatedAsync(process);
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task A_result_that_comes_right_after_the_watchdogs_interrupt_is_reported_as_the_result_and_only_it()
    {
        var process = await StartAsync(Spec(ProcessMode.Full, turnTimeout: TimeSpan.FromSeconds(5))); // FakeClaude takes the prompt within it on a slow machine
        var (prompt, caller) = NewPrompt("[[finish-on-interrupt]] done just in time"); // its success result comes after the interrupt

        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);

        Assert.Null(turn.Failed);
        Assert.Equal("echo: done just in time", turn.ResultText);
        Assert.False(turn.Completed!.Result.IsError);
        Assert.Equal(new TurnFinished(prompt.PromptId, turn.Completed.Result.SessionId, false),
            await _account.FishForMessageAsync<TurnFinished>(_ => true, Turn));
        Assert.StartsWith("echo: next", (await RunAsync(process, "next")).ResultText);
        Assert.False(caller.HasMessages); // one terminal answer
    }

    [Fact]
    public async Task A_turn_deaf_to_a_callers_interrupt_is_killed_after_interrupt_timeout_not_the_watchdogs_and_reported_once_as_interrupted()
    {
        var process = await StartAsync(Spec(ProcessMode.Full, turnTimeout: TimeSpan.FromMinutes(10), interruptTimeout: TimeSpan.FromSeconds(1)));
        var (prompt, caller) = NewPrompt("[[hang]] deaf");
        Watch(process);
        process.Tell(new RunTurn(prompt, ClearFirst: false));
        await caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, Turn); // it runs (unstarted, it would be cancelled)

        process.Tell(new InterruptTurn(prompt.PromptId));

        var turn = await caller.ReceiveTurnAsync(Turn);
        Assert.Equal(TurnErrorCodes.Interrupted, turn.Failed?.Code);
        Assert.Equal("no result 1s after the interrupt (konsole.claude.interrupt-timeout): the CLI process was killed", turn.Failed!.Message);
        Assert.Equal(prompt.PromptId, (await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn)).TurnReported);
        await ExpectTerminatedAsync(process);
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task A_429_result_without_a_rate_limit_event_tells_the_account_it_is_rate_limited_for_a_minute()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (prompt, caller) = NewPrompt("[[api-error:429]] an API-key account's limit"); // no rate_limit_event on API keys

        process.Tell(new RunTurn(prompt, ClearFirst: false));

        Assert.True((await caller.ReceiveTurnAsync(Turn)).Completed!.Result.IsError);
        var told = await _account.FishForMessageAsync<RateLimitObserved>(_ => true, Turn); // before its TurnFinished
        Assert.Equal("rejected", told.Info.Status);
        Assert.InRange(told.Info.ResetsAt!.Value, DateTimeOffset.UtcNow.AddSeconds(30), DateTimeOffset.UtcNow.AddMinutes(1));
        var (other, otherCaller) = NewPrompt("[[api-error:500]] a server error");
        process.Tell(new RunTurn(other, ClearFirst: false));
        await otherCaller.ReceiveTurnAsync(Turn);
        var toldOfIt = new List<object>();
        await _account.FishForMessageAsync(m => { toldOfIt.Add(m); return m is TurnFinished f && f.PromptId == other.PromptId; }, Turn);
        Assert.DoesNotContain(toldOfIt, m => m is RateLimitObserved); // a 500 is no rate limit
    }

    [Fact]
    public async Task A_crash_mid_turn_is_reported_to_the_parent_and_the_actor_stops()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (prompt, caller) = NewPrompt("[[crash]]");
        Watch(process);

        process.Tell(new RunTurn(prompt, ClearFirst: false));

        var exited = await _account.ExpectMsgAsync<ProcessExited>(Turn);
        Assert.Equal(3, exited.ExitCode);
        Assert.NotNull(exited.SessionId);
        Assert.Contains("exited with code 3", exited.Reason);
        Assert.Equal(prompt.PromptId, exited.SentTurn); // it reached the CLI: it may have run
        await ExpectTerminatedAsync(process);
        // The turn's end is its account's to report (it knows what was queued behind it).
        await caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, Turn);
        await caller.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
    }

    [Theory]
    [InlineData(ProcessMode.Full)]
    [InlineData(ProcessMode.Chat)]
    public async Task A_prompt_for_another_model_switches_the_process_to_it_and_one_for_none_switches_back(ProcessMode mode)
    {
        var process = await StartAsync(mode);

        var first = await RunAsync(process, "hello", model: "fake-opus");
        var second = await RunAsync(process, "again", model: "fake-opus");
        var third = await RunAsync(process, "and back");

        Assert.Equal(["fake-opus", "fake-opus", "fake-claude"], new[] { first, second, third }.Select(ModelOf));
        Assert.StartsWith("echo: and back", third.ResultText);
    }

    [Fact]
    public async Task A_model_the_CLI_refuses_ends_the_prompt_with_model_unavailable_and_the_process_stays_on_its_model()
    {
        var process = await StartAsync(ProcessMode.Full);
        await RunAsync(process, "on opus", model: "fake-opus");

        var refused = await RunAsync(process, "hello", model: "unknown-model");
        var after = await RunAsync(process, "still here", model: "fake-opus");

        Assert.Equal(TurnErrorCodes.ModelUnavailable, refused.Failed?.Code);
        Assert.Contains("'unknown-model'", refused.Failed!.Message);
        Assert.Contains("was not found", refused.Failed.Message);
        Assert.Empty(refused.Outputs); // it never reached the CLI
        Assert.Equal("fake-opus", ModelOf(after));
        Assert.StartsWith("echo: still here [history: on opus]", after.ResultText);
    }

    [Fact]
    public async Task A_refusal_that_comes_after_its_prompt_was_interrupted_does_not_fail_the_next_prompt()
    {
        var process = await StartAsync(ProcessMode.Full);
        var (refused, refusedCaller) = NewPrompt("never runs");
        var (next, nextCaller) = NewPrompt("runs after it");

        // The CLI answers the set_model 0.5 s late: the interrupt comes before it, however the test's thread is scheduled.
        process.Tell(new RunTurn(refused with { Model = "unknown-model[[delay:500]]" }, ClearFirst: false));
        process.Tell(new InterruptTurn(refused.PromptId));
        process.Tell(new RunTurn(next, ClearFirst: false));

        Assert.Equal(TurnErrorCodes.Interrupted, (await refusedCaller.ReceiveTurnAsync(Turn)).Failed?.Code);
        var turn = await nextCaller.ReceiveTurnAsync(Turn);
        Assert.StartsWith("echo: runs after it", turn.ResultText);
        Assert.Equal("fake-claude", ModelOf(turn));
    }

    [Fact]
    public async Task Going_back_to_no_model_means_the_model_of_the_command_line()
    {
        var spec = Spec(ProcessMode.Full);
        var process = await StartAsync(spec with { Launch = spec.Launch with { Arguments = [.. spec.Launch.Arguments, "--model", "fake-haiku"] } });

        var own = await RunAsync(process, "hello");
        var other = await RunAsync(process, "again", model: "fake-opus");
        var back = await RunAsync(process, "back");

        Assert.Equal(["fake-haiku", "fake-opus", "fake-haiku"], new[] { own, other, back }.Select(ModelOf));
    }

    private static string? ModelOf(TurnRecord turn) =>
        JsonDocument.Parse(turn.Outputs.Single(o => o.Frame.IsInit).Frame.Raw).RootElement.GetProperty("model").GetString();

    [Fact]
    public async Task A_stderr_line_over_the_log_cap_is_reported_by_its_size_and_a_crash_message_stays_short()
    {
        var process = await StartAsync(ProcessMode.Full);

        process.Tell(new RunTurn(NewPrompt($"[[stderr:3:{CliProcess.MaxStderrLineBytes * 2}]] [[crash]]").Prompt, ClearFirst: false));

        var exited = await _account.ExpectMsgAsync<ProcessExited>(Turn);
        Assert.Contains($"(a stderr line of {CliProcess.MaxStderrLineBytes * 2 + "[fake-claude] diagnostic line 2 ".Length:N0} bytes, over the 64 KB kept for the log, skipped)", exited.Reason);
        Assert.InRange(exited.Reason.Length, 1, 2000);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task What_the_CLI_left_running_in_its_process_group_is_killed_once_it_exits(bool crash)
    {
        var process = await StartAsync(ProcessMode.Full);
        var started = await RunAsync(process, "[[child]] a background command");
        var child = int.Parse(Regex.Match(started.ResultText!, @"child (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(ProcessTable.IsRunning(child));
        Watch(process);

        if (crash)
            process.Tell(new RunTurn(NewPrompt("[[crash]]").Prompt, ClearFirst: false));
        else
            Sys.Stop(process); // stdin closed: the CLI exits on its own

        await ExpectTerminatedAsync(process, Turn);
        await AwaitConditionAsync(() => Task.FromResult(!ProcessTable.IsRunning(child)), Turn);
    }

    [Fact]
    public async Task A_crash_is_reported_though_a_command_the_CLI_started_still_holds_its_stderr()
    {
        var process = await StartAsync(ProcessMode.Full);
        var started = await RunAsync(process, "[[child:stderr]] a command given the CLI's stderr");
        var child = int.Parse(Regex.Match(started.ResultText!, @"child (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Watch(process);

        process.Tell(new RunTurn(NewPrompt("[[crash]]").Prompt, ClearFirst: false));

        // The CLI's stderr stays open while that command runs: its exit was seen only once the pipe closed, never here.
        var exited = await _account.FishForMessageAsync<ProcessExited>(_ => true, Turn);
        Assert.Equal(3, exited.ExitCode);
        await ExpectTerminatedAsync(process, Turn);
        await AwaitConditionAsync(() => Task.FromResult(!ProcessTable.IsRunning(child)), Turn);
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("", true)]
    [InlineData("orphan", false)]
    [InlineData("orphan", true)]
    public async Task What_a_tool_detached_into_a_session_of_its_own_does_not_outlive_the_actor(string how, bool crash)
    {
        var process = await StartAsync(ProcessMode.Full);
        var started = await RunAsync(process, $"[[detached:{how}]] a command detached with setsid");
        var detached = int.Parse(Regex.Match(started.ResultText!, @"detached (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        var detachedStarted = Posix.StartTime(detached);
        Assert.True(ProcessTable.IsRunning(detached));
        Assert.Equal(detached, ProcessTable.SessionOf(detached)); // out of the CLI's process group: the group's kill does not reach it
        Watch(process);

        try
        {
            if (crash)
                process.Tell(new RunTurn(NewPrompt("[[crash]]").Prompt, ClearFirst: false));
            else
                Sys.Stop(process);

            await ExpectTerminatedAsync(process, Turn);
            await AwaitConditionAsync(() => Task.FromResult(!ProcessTable.IsRunning(detached)), Turn);
        }
        finally
        {
            if (Posix.StartTime(detached) == detachedStarted)
                Posix.Signal(detached, Posix.SigKill, group: false);
        }
    }

    [Fact]
    public async Task A_rejected_rate_limit_reaches_the_account_and_the_turn_ends_with_the_error_result()
    {
        var process = await StartAsync(ProcessMode.Full);

        var (prompt, caller) = NewPrompt("[[rate-limit]] hello");
        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);

        Assert.True(turn.Completed!.Result.IsError);
        var limit = await _account.FishForMessageAsync<RateLimitObserved>(_ => true, Turn);
        Assert.Equal("rejected", limit.Info.Status);
        Assert.InRange(limit.Info.ResetsAt!.Value, DateTimeOffset.UtcNow.AddMinutes(50), DateTimeOffset.UtcNow.AddMinutes(70));
    }

    [Fact]
    public async Task Hostile_stdout_lines_are_skipped_and_unknown_types_pass_through()
    {
        var process = await StartAsync(ProcessMode.Full);

        var turn = await RunAsync(process, "[[garbage:200]] still fine");

        Assert.Equal("echo: still fine", turn.ResultText);
        Assert.Contains(turn.Outputs, o => o.Frame.Type == "mystery_frame");
        Assert.Contains(turn.Outputs, o => o.Frame.Type == "deep_frame"); // nested deeper than 64 levels
        Assert.Contains(turn.Outputs, o => o.Frame.Type?.StartsWith("mystery\uFFFD", StringComparison.Ordinal) == true); // invalid UTF-8 in its type
        Assert.Contains(turn.Outputs, o => o.Frame is { Type: "rate_limit_event", RateLimit.Utilization: null }); // 1e400
        Assert.All(turn.Outputs, o => Assert.True(o.Frame.Lifecycle is null || o.Frame.Lifecycle.CommandUuid == o.PromptId)); // not another command's
        Assert.All(turn.Outputs, o => Assert.StartsWith("{", o.Frame.Raw));
    }

    [Fact]
    public async Task A_line_over_the_cap_is_dropped_and_the_turn_still_ends_with_its_result()
    {
        var process = await StartAsync(ProcessMode.Full, maxLineBytes: 1024 * 1024);

        var turn = await EventFilter.Error(contains: "dropped a stdout line (assistant) of 2,0").ExpectOneAsync(() => RunAsync(process, "[[huge:2000000]]"));

        Assert.NotNull(turn.Completed);
        Assert.DoesNotContain(turn.Outputs, o => o.Frame.Type == "assistant");
        var dropped = Assert.Single(turn.Dropped); // the caller is told what is missing
        Assert.Equal(("assistant", 1024 * 1024L), (dropped.Type, dropped.MaxLineBytes));
        Assert.True(dropped.Bytes > 2_000_000, $"{dropped.Bytes} bytes");
        Assert.Equal("echo: after", (await RunAsync(process, "after")).ResultText);
    }

    [Fact]
    public async Task A_result_over_the_cap_ends_the_turn_at_once_with_result_too_large_and_the_process_serves_the_next()
    {
        var process = await StartAsync(ProcessMode.Full, maxLineBytes: 1024 * 1024); // the watchdog's turn-timeout: 10 minutes

        var turn = await RunAsync(process, "Remember 42 [[huge-result:2000000]]");

        Assert.Equal(TurnErrorCodes.ResultTooLarge, turn.Failed?.Code);
        Assert.Contains("2,000,", turn.Failed!.Message);
        Assert.Contains("assistant", turn.Outputs.Select(o => o.Frame.Type)); // what came before it came through
        Assert.Equal("echo: after [history: Remember 42]", (await RunAsync(process, "after")).ResultText); // the conversation goes on
    }

    [Fact]
    public async Task An_8_MB_line_within_the_cap_passes_whole()
    {
        var process = await StartAsync(ProcessMode.Full);

        var turn = await RunAsync(process, "[[huge:8388608]]");

        var assistant = turn.Outputs.Single(o => o.Frame.Type == "assistant").Frame;
        Assert.True(assistant.Raw.Length > 8_388_608);
    }

    [Fact]
    public async Task Stderr_is_drained_so_a_chatty_process_never_blocks()
    {
        var process = await StartAsync(ProcessMode.Full);

        var turn = await RunAsync(process, "[[stderr:20000]] loud");

        Assert.Equal("echo: loud", turn.ResultText);
    }

    [Fact]
    public async Task The_process_gets_the_accounts_environment_and_none_of_the_hosts_credentials()
    {
        // Every FakeClaude in this test run inherits these; the supervisor must strip them.
        using var host = EnvironmentScope.Set(("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-host-token"), ("CLAUDECODE", "1"));
        var process = await StartAsync(ProcessMode.Full);

        var turn = await RunAsync(process,
            "[[env:CLAUDE_CONFIG_DIR]] [[env:CLAUDE_CODE_OAUTH_TOKEN]] [[env:ANTHROPIC_API_KEY]] [[env:CLAUDECODE]] [[env:KONSOLE_EXTRA]]");

        Assert.Contains($"env CLAUDE_CONFIG_DIR={Sandbox.Accounts[0].ConfigDir}", turn.ResultText);
        Assert.Contains("env CLAUDE_CODE_OAUTH_TOKEN=<unset>", turn.ResultText);
        Assert.Contains("env ANTHROPIC_API_KEY=<unset>", turn.ResultText);
        Assert.Contains("env CLAUDECODE=<unset>", turn.ResultText);
        Assert.Contains("env KONSOLE_EXTRA=passed", turn.ResultText);
    }

    [Fact]
    public async Task An_api_key_of_any_shape_that_the_cli_prints_is_masked_in_the_log_and_the_crash_reason()
    {
        var spec = ProxyKeySpec();
        var logs = EventsOf(typeof(Akka.Event.Warning));
        var process = await StartAsync(spec);

        process.Tell(new RunTurn(NewPrompt("[[stderr-env:ANTHROPIC_API_KEY]] [[crash]]").Prompt, ClearFirst: false));

        var exited = await _account.ExpectMsgAsync<ProcessExited>(Turn);
        Assert.Contains("env ANTHROPIC_API_KEY=***", exited.Reason);
        Assert.DoesNotContain(ProxyKey, exited.Reason);
        var logged = await logs.FishForMessageAsync<Akka.Event.Warning>(w => w.ToString().Contains("exited with code"), Turn);
        Assert.DoesNotContain(ProxyKey, logged.ToString());
    }

    [Fact]
    public async Task Another_accounts_api_key_that_the_cli_inherits_from_the_host_and_prints_is_masked_too()
    {
        // Another account's api-key-env variable: in the host's environment, so every CLI inherits it (only the overrides are the launch's).
        IActorRef process;
        using (EnvironmentScope.Set(("KONSOLE_SPEC_KEY_BETA", ProxyKey)))
            process = await StartAsync(ProcessMode.Full);

        process.Tell(new RunTurn(NewPrompt("[[stderr-env:KONSOLE_SPEC_KEY_BETA]] [[crash]]").Prompt, ClearFirst: false));

        var exited = await _account.ExpectMsgAsync<ProcessExited>(Turn);
        Assert.Contains("env KONSOLE_SPEC_KEY_BETA=***", exited.Reason);
        Assert.DoesNotContain(ProxyKey, exited.Reason);
    }

    [Fact]
    public async Task An_api_key_in_a_stdout_line_that_is_not_json_is_masked_whole_in_its_preview_even_across_the_cut()
    {
        // The key starts a few bytes before the preview's 200-byte cut.
        var logged = await PreviewLoggedForAsync($"{new string('x', 195)}${{ANTHROPIC_API_KEY}}");

        Assert.Contains("x***", logged);
        Assert.DoesNotContain(ProxyKey[..5], logged);
    }

    [Fact]
    public async Task An_api_key_twice_in_a_stdout_line_that_is_not_json_is_masked_whole_both_times_in_its_preview()
    {
        // The first one masked shortens the preview's text: the second, a few bytes past the cut, must not move into it in part.
        var logged = await PreviewLoggedForAsync($"${{ANTHROPIC_API_KEY}}{new string('x', 185)}${{ANTHROPIC_API_KEY}}");

        Assert.Contains("***x", logged);
        Assert.DoesNotContain(ProxyKey[..5], logged);
    }

    /// <summary>The warning logged for a junk stdout line, <paramref name="echoed"/> by a shell (the proxy key as <c>${ANTHROPIC_API_KEY}</c>), before the CLI starts.</summary>
    private async Task<string> PreviewLoggedForAsync(string echoed)
    {
        var spec = ProxyKeySpec();
        var launch = spec.Launch with
        {
            FileName = "sh",
            Arguments = ["-c", $"echo \"{echoed}\"; exec \"$0\" \"$@\"", spec.Launch.FileName, .. spec.Launch.Arguments],
        };
        var logs = EventsOf(typeof(Akka.Event.Warning));

        await StartAsync(spec with { Launch = launch });

        return (await logs.FishForMessageAsync<Akka.Event.Warning>(w => w.ToString().Contains("not a JSON object"), Turn)).ToString();
    }

    private const string ProxyKey = "proxy-7f3a9c2e41d8b6"; // a proxy's key: nothing like sk-ant-

    private HotProcessSpec ProxyKeySpec()
    {
        using (EnvironmentScope.Set(("KONSOLE_SPEC_PROXY_KEY", ProxyKey)))
            return Spec(ProcessMode.Full, apiKeyEnv: "KONSOLE_SPEC_PROXY_KEY");
    }

    [Fact]
    public async Task Stopping_the_actor_stops_its_process()
    {
        var process = await StartAsync(ProcessMode.Full);
        var pid = _account.LastMessage is ProcessReady ready ? ready.ProcessId : throw new InvalidOperationException();
        using var os = Process.GetProcessById(pid);

        Watch(process);
        Sys.Stop(process);
        await ExpectTerminatedAsync(process);

        await os.WaitForExitAsync(new CancellationTokenSource(Turn).Token);
        await AwaitAssertAsync(() => Assert.Empty(LiveCliProcesses), Turn);
    }

    [Fact]
    public async Task An_actor_stopped_while_its_process_is_starting_leaves_no_process()
    {
        // The process starts off the actor's thread: the actor is stopped before (or as) it hears that it started. Its start
        // is then made (and the process stopped) or, still queued, not made at all: either way no process is left.
        var pidFile = Path.Combine(Sandbox.Root, "started.pid");
        var spec = Spec(ProcessMode.Full);
        var launch = spec.Launch with { FileName = "sh", Arguments = ["-c", $"echo $$ > '{pidFile}.tmp' && mv '{pidFile}.tmp' '{pidFile}' && exec cat"] };
        var process = Sys.ActorOf(ForwardingParent.Props(HotProcessActor.Props(spec with { Launch = launch }), _account.Ref));
        await Sys.ActorSelection(process.Path / "child").Ask<ActorIdentity>(new Identify(null), Turn); // answered after its PreStart asked for the start
        Sys.Stop(process);

        // Starts run in the order asked: once a start asked after it has run, it was made or dropped.
        var tracker = CliProcessTracker.Get(Sys);
        var after = await tracker.StartAsync(() => CliProcess.Start(launch with { FileName = "cat", Arguments = [] }, _ => { }, _ => { }, _ => { }),
            TimeSpan.FromSeconds(2), Turn);
        await AwaitAssertAsync(() => Assert.Equal([after.ProcessId], LiveCliProcesses), Turn); // a process it made was tracked until it exited
        if (File.Exists(pidFile)) // made: the shell wrote its pid before it became cat
            await AwaitConditionAsync(() => Task.FromResult(!ProcessTable.IsRunning(int.Parse(File.ReadAllText(pidFile).Trim()))), Turn);
        await after.StopAsync(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task A_process_that_never_answers_initialize_is_killed_and_reported()
    {
        // cat echoes our initialize request back but never answers it.
        var spec = Spec(ProcessMode.Full);
        spec = spec with { Claude = spec.Claude with { StartTimeout = TimeSpan.FromSeconds(3) } }; // cat is started within it on a slow machine
        var launch = spec.Launch with { FileName = "cat", Arguments = [] };
        Sys.ActorOf(ForwardingParent.Props(HotProcessActor.Props(spec with { Launch = launch }), _account.Ref));

        var exited = await _account.ExpectMsgAsync<ProcessExited>(Turn);

        Assert.Contains("did not answer initialize", exited.Reason);
    }

    [Fact]
    public async Task A_cli_that_cannot_be_started_is_reported_not_thrown()
    {
        var spec = Spec(ProcessMode.Full);
        Sys.ActorOf(ForwardingParent.Props(HotProcessActor.Props(spec with { Launch = spec.Launch with { FileName = "/nonexistent/claude" } }), _account.Ref));

        var exited = await _account.ExpectMsgAsync<ProcessExited>(Turn);

        Assert.Contains("could not start '/nonexistent/claude'", exited.Reason);
    }

    private HotProcessSpec Spec(ProcessMode mode, long? maxLineBytes = null, TimeSpan? turnTimeout = null, TimeSpan? interruptTimeout = null,
        TimeSpan? startTimeout = null, string? apiKeyEnv = null)
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path, new Dictionary<string, string> { ["KONSOLE_EXTRA"] = "passed" });
        var account = settings.Accounts[0] with { ApiKeyEnv = apiKeyEnv };
        var launch = CliLaunch.For(settings, account, mode);
        var claude = settings.Claude with
        {
            TurnTimeout = turnTimeout ?? settings.Claude.TurnTimeout,
            InterruptTimeout = interruptTimeout ?? settings.Claude.InterruptTimeout,
            StartTimeout = startTimeout ?? settings.Claude.StartTimeout,
        };
        return new HotProcessSpec(account.Id, mode, account.ConfigDir,
            maxLineBytes is { } cap ? launch with { MaxLineBytes = cap } : launch,
            null, claude);
    }

    private Task<IActorRef> StartAsync(ProcessMode mode, long? maxLineBytes = null) => StartAsync(Spec(mode, maxLineBytes));

    private async Task<IActorRef> StartAsync(HotProcessSpec spec)
    {
        var parent = Sys.ActorOf(ForwardingParent.Props(HotProcessActor.Props(spec), _account.Ref));
        await _account.ExpectMsgAsync<ProcessReady>(Turn);
        return parent;
    }

    private async Task<TurnRecord> RunAsync(IActorRef process, string text, string? model = null)
    {
        var (prompt, caller) = NewPrompt(text);
        prompt = prompt with { Model = model };
        process.Tell(new RunTurn(prompt, ClearFirst: false));
        var turn = await caller.ReceiveTurnAsync(Turn);
        await _account.FishForMessageAsync(m => m is TurnFinished f && f.PromptId == prompt.PromptId, Turn);
        return turn;
    }
}
