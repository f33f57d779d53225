using System.Diagnostics;
using System.Runtime.InteropServices;
using Akka.Actor;
using Konsole.Actors.Accounts;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Actors.Tests.Routing;

/// <summary>The RoleRouter with two real accounts (alpha, beta) on FakeClaude.</summary>
public sealed class RoleRouterSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 2)
{
    private const string Long = "[[chunks:1000:50]]";
    private const string WhoServes = "[[env:CLAUDE_CONFIG_DIR]]";

    [Fact]
    public async Task Dashboard_prompts_run_on_the_dashboard_accounts_full_process_and_quick_turns_on_the_quickturn_accounts_chat_process()
    {
        var router = await StartAsync();

        var dashboard = await RouteAsync(router, Role.Dashboard, $"hi {WhoServes}");
        var quick = await RouteAsync(router, Role.QuickTurn, $"hi {WhoServes}");

        Assert.Contains(AlphaDir, dashboard.ResultText);
        Assert.DoesNotContain("\"tools\":[]", Init(dashboard));
        Assert.Contains(BetaDir, quick.ResultText);
        Assert.Contains("\"tools\":[]", Init(quick));
    }

    [Fact]
    public async Task A_swap_answers_at_once_lets_the_running_turn_finish_where_it_started_and_sends_later_prompts_by_the_new_roles()
    {
        var events = EventsOf(typeof(AccountsSwapped));
        var router = await StartAsync();
        var pidsBefore = await ProcessIdsAsync(router);
        var running = NewPrompt($"{Long} {WhoServes}");
        router.Tell(new RoutePrompt(Role.Dashboard, running.Prompt));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);

        var changed = await router.Ask<RolesChanged>(SwapRoles.Instance, TurnTimeout);

        Assert.Equal(new RoleAssignment("beta", "alpha"), changed.Roles);
        Assert.Equal(new AccountsSwapped(new RoleAssignment("alpha", "beta"), new RoleAssignment("beta", "alpha")),
            await events.ExpectMsgAsync<AccountsSwapped>());
        var after = await RouteAsync(router, Role.Dashboard, $"after the swap {WhoServes}");
        Assert.Contains(BetaDir, after.ResultText); // while alpha's turn is still running
        router.Tell(new InterruptPrompt(running.Prompt.PromptId));
        var first = await running.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal("alpha", first.Completed!.Conversation!.AccountId);
        Assert.Equal(pidsBefore, await ProcessIdsAsync(router)); // no process started or stopped
    }

    [Fact]
    public async Task After_a_swap_a_sessions_dashboard_conversation_continues_on_the_other_account()
    {
        var router = await StartAsync();
        var first = await RouteAsync(router, Role.Dashboard, "Remember 42", session: "ui-1");
        await router.Ask<RolesChanged>(SwapRoles.Instance, TurnTimeout);

        var second = await RouteAsync(router, Role.Dashboard, "What number?", session: "ui-1", conversation: first.Completed!.Conversation);

        Assert.Equal("echo: What number? [history: Remember 42]", second.ResultText);
        Assert.Equal(new ConversationRef(first.Completed.Conversation!.SessionId, "beta", Sandbox.Accounts[1].ConfigDir),
            second.Completed!.Conversation);
        // And back again: alpha's process held the old state of this conversation; it must not be reused.
        await router.Ask<RolesChanged>(SwapRoles.Instance, TurnTimeout);
        var third = await RouteAsync(router, Role.Dashboard, "And now?", session: "ui-1", conversation: second.Completed.Conversation);
        Assert.Equal("echo: And now? [history: Remember 42 | What number?]", third.ResultText);
    }

    [Fact]
    public async Task A_prompt_sent_after_its_previous_one_continues_where_that_one_ran_not_where_the_conversation_was_before()
    {
        var router = await StartAsync();
        var first = await RouteAsync(router, Role.Dashboard, "Remember 42", session: "ui-1");
        await router.Ask<RolesChanged>(SwapRoles.Instance, TurnTimeout);
        var onAlpha = first.Completed!.Conversation;

        var previous = NewPrompt("Remember 7", "ui-1", onAlpha);
        var next = NewPrompt("What numbers?", "ui-1", onAlpha);
        router.Tell(new RoutePrompt(Role.Dashboard, previous.Prompt));
        router.Tell(new RoutePrompt(Role.Dashboard, next.Prompt with { After = previous.Prompt.PromptId }));
        await previous.Caller.ReceiveTurnAsync(TurnTimeout);
        var pidAfterPrevious = await ProcessIdsAsync(router);

        Assert.Equal("echo: What numbers? [history: Remember 42 | Remember 7]", (await next.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        Assert.Equal(pidAfterPrevious, await ProcessIdsAsync(router)); // beta's process went on; it was not moved again
    }

    [Fact]
    public async Task A_prompt_sent_before_its_previous_turn_ended_continues_it_though_another_sessions_turn_ran_between()
    {
        var router = await StartAsync();
        var first = NewPrompt("[[chunks:10:50]] Remember 42", "ui-1");
        router.Tell(new RoutePrompt(Role.Dashboard, first.Prompt));
        await first.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var other = NewPrompt("Something else", "ui-2");
        router.Tell(new RoutePrompt(Role.Dashboard, other.Prompt));
        await other.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout);
        var next = NewPrompt("What number?", "ui-1"); // sent before the first reported its conversation, queued behind ui-2's
        router.Tell(new RoutePrompt(Role.Dashboard, next.Prompt with { After = first.Prompt.PromptId }));
        await next.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout);

        Assert.Equal("echo: Remember 42", (await first.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        Assert.Equal("echo: Something else", (await other.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        // Before: it began a new conversation (after a /clear), as it carried none and ui-2's turn ran last; the first turn was lost.
        Assert.Equal("echo: What number? [history: Remember 42]", (await next.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
    }

    [Fact]
    public async Task A_prompt_sent_while_its_previous_one_waits_on_the_old_dashboard_follows_it_there_over_a_swap()
    {
        var router = await StartAsync();
        var first = await RouteAsync(router, Role.Dashboard, "Remember 42", session: "ui-1");
        var onAlpha = first.Completed!.Conversation;
        var blocker = NewPrompt(Long, "other");
        router.Tell(new RoutePrompt(Role.Dashboard, blocker.Prompt));
        await blocker.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var previous = NewPrompt("Remember 7", "ui-1", onAlpha);
        router.Tell(new RoutePrompt(Role.Dashboard, previous.Prompt));
        Assert.Equal("alpha", (await previous.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout)).AccountId);
        await router.Ask<RolesChanged>(SwapRoles.Instance, TurnTimeout);

        var next = NewPrompt("What numbers?", "ui-1", onAlpha); // as its session sends it: After its previous one
        router.Tell(new RoutePrompt(Role.Dashboard, next.Prompt with { After = previous.Prompt.PromptId }));

        Assert.Equal(("alpha", 2), (await next.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout)) is var queued ? (queued.AccountId, queued.Position) : default);
        router.Tell(new InterruptPrompt(blocker.Prompt.PromptId));
        Assert.Equal("echo: Remember 7 [history: Remember 42]", (await previous.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        var answered = await next.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal("echo: What numbers? [history: Remember 42 | Remember 7]", answered.ResultText);
        // The session's prompt after that, its previous one ended, goes by the roles as they are now.
        var later = await RouteAsync(router, Role.Dashboard, $"And now? {WhoServes}", session: "ui-1", conversation: answered.Completed!.Conversation);
        Assert.Contains(BetaDir, later.ResultText);
        Assert.Contains("[history: Remember 42 | Remember 7 | What numbers?]", later.ResultText);
    }

    [Fact]
    public async Task A_prompt_following_a_turn_still_running_on_an_account_that_hits_its_limit_waits_for_it_and_continues_it_elsewhere()
    {
        var router = await StartAsync();
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);
        var first = NewPrompt("[[chunks:20:50]] Remember 42", "ui-1");
        router.Tell(new RoutePrompt(Role.Dashboard, first.Prompt));
        await first.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var next = NewPrompt($"What number? {WhoServes}", "ui-1"); // sent before the first reported its conversation
        router.Tell(new RoutePrompt(Role.Dashboard, next.Prompt with { After = first.Prompt.PromptId }));
        Assert.Equal("alpha", (await next.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout)).AccountId);

        // Another of alpha's processes (its chat one) is rejected while the first turn runs on: alpha's traffic moves away.
        alpha.Tell(new HotProcessProtocol.RateLimitObserved(new RateLimitInfo("rejected", DateTimeOffset.UtcNow.AddHours(1), "five_hour", null)));
        var late = NewPrompt($"And this? {WhoServes}", "ui-1");
        router.Tell(new RoutePrompt(Role.Dashboard, late.Prompt with { After = next.Prompt.PromptId }));

        Assert.Equal("echo: Remember 42", (await first.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        // Before: handed to beta at once, it ran there beside the first, on an empty conversation ("[history: " absent).
        var answered = await next.Caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Contains(BetaDir, answered.ResultText);
        Assert.StartsWith("echo: What number? [history: Remember 42]", answered.ResultText);
        var after = (await late.Caller.ReceiveTurnAsync(TurnTimeout)).ResultText;
        Assert.Contains(BetaDir, after);
        Assert.StartsWith("echo: And this? [history: Remember 42 | What number?", after);
    }

    [Fact]
    public async Task A_prompt_handed_back_while_a_later_prompt_of_its_session_waits_does_not_take_its_place_as_the_one_to_follow()
    {
        var router = await StartAsync();
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);
        var busy = NewPrompt("[[delay:600000]] keeps alpha busy", "ses-0");
        router.Tell(new RoutePrompt(Role.Dashboard, busy.Prompt));
        await busy.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, TurnTimeout);
        var first = NewPrompt("[[delay:600000]] first", "ui-1"); // where it goes next, it keeps that process busy
        router.Tell(new RoutePrompt(Role.Dashboard, first.Prompt));
        var second = NewPrompt("second", "ui-1");
        var secondPrompt = second.Prompt with { After = first.Prompt.PromptId };
        router.Tell(new RoutePrompt(Role.Dashboard, secondPrompt)); // follows it to alpha
        Assert.Equal("alpha", (await second.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout)).AccountId);
        alpha.Tell(new HotProcessProtocol.RateLimitObserved(new RateLimitInfo("allowed_warning", DateTimeOffset.UtcNow.AddHours(1), "five_hour", 0.95)));
        await AwaitAssertAsync(async () => Assert.Equal(0.95, (await StatusOfAsync(router, "alpha")).RateLimit?.Utilization), TurnTimeout);

        router.Tell(new AccountProtocol.PromptHandedBack(first.Prompt, ProcessMode.Full, "alpha")); // as alpha, nearing its limit, would: it goes to beta
        var third = NewPrompt("third", "ui-1");
        router.Tell(new RoutePrompt(Role.Dashboard, third.Prompt with { After = second.Prompt.PromptId }));

        // It follows the second, still waiting on alpha. Before: the first, handed back, had taken the second's place as the
        // session's last, so the third went to beta on its own, ahead of the second and on the conversation from before it.
        Assert.Equal("alpha", (await third.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout)).AccountId);

        // The second handed back in its turn follows the first to beta, where routing afresh would not take it (beta too near its limit).
        var beta = await Sys.ActorSelection(router.Path / "beta").ResolveOne(TurnTimeout);
        beta.Tell(new HotProcessProtocol.RateLimitObserved(new RateLimitInfo("allowed_warning", DateTimeOffset.UtcNow.AddHours(1), "five_hour", 0.95)));
        await AwaitAssertAsync(async () => Assert.Equal(0.95, (await StatusOfAsync(router, "beta")).RateLimit?.Utilization), TurnTimeout);
        router.Tell(new AccountProtocol.PromptHandedBack(secondPrompt, ProcessMode.Full, "alpha"));
        await second.Caller.FishForMessageAsync<PromptQueued>(q => q.AccountId == "beta", TurnTimeout);
    }

    [Fact]
    public async Task A_prompt_handed_back_by_the_rate_limited_account_its_previous_one_went_to_is_not_sent_back_there()
    {
        var router = await StartAsync();
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);
        var beta = await Sys.ActorSelection(router.Path / "beta").ResolveOne(TurnTimeout);
        var rejected = new HotProcessProtocol.RateLimitObserved(new RateLimitInfo("rejected", DateTimeOffset.UtcNow.AddHours(1), "five_hour", null));
        var busy = NewPrompt("[[delay:600000]] keeps alpha busy", "ses-0");
        router.Tell(new RoutePrompt(Role.Dashboard, busy.Prompt));
        await busy.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, TurnTimeout);
        // The first waits on alpha, which is rejected: alpha hands it back, and it runs on beta.
        var first = NewPrompt("[[delay:600000]] first", "ui-1");
        router.Tell(new RoutePrompt(Role.Dashboard, first.Prompt));
        await first.Caller.FishForMessageAsync<PromptQueued>(q => q.AccountId == "alpha", TurnTimeout);
        alpha.Tell(rejected);
        await first.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, TurnTimeout);
        // The second follows it to beta, which is rejected in its turn: it waits there for the first.
        var second = NewPrompt("second", "ui-1");
        router.Tell(new RoutePrompt(Role.Dashboard, second.Prompt with { After = first.Prompt.PromptId }));
        await second.Caller.FishForMessageAsync<PromptQueued>(q => q.AccountId == "beta", TurnTimeout);
        beta.Tell(rejected);
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.RateLimited, (await StatusOfAsync(router, "beta")).State), TurnTimeout);

        router.Tell(new InterruptPrompt(first.Prompt.PromptId)); // the first ends: beta hands the second back

        // No account can take it now: it fails, saying when to retry. Before: it was sent back to beta, which handed it back,
        // and so on until beta's reset, the router and beta passing it to and fro, its client hearing nothing.
        var failed = await second.Caller.FishForMessageAsync<TurnFailed>(_ => true, TurnTimeout);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, failed.Code);
        Assert.NotNull(failed.RetryAfter);
    }

    [Fact]
    public async Task A_prompt_handed_back_by_a_rate_limited_account_as_it_was_interrupted_is_not_run_elsewhere()
    {
        var router = await StartAsync();
        var (prompt, caller) = NewPrompt("interrupted on its way back");

        // As when the interrupt reaches the router after the account took the prompt from its queue to hand it back.
        router.Tell(new InterruptPrompt(prompt.PromptId));
        router.Tell(new AccountProtocol.PromptHandedBack(prompt, ProcessMode.Full, "alpha"));

        var turn = await caller.ReceiveTurnAsync(TurnTimeout);
        Assert.Equal(TurnErrorCodes.Interrupted, turn.Failed?.Code);
        Assert.Empty(turn.Outputs);
    }

    [Fact]
    public async Task Any_account_can_be_put_on_the_dashboard_and_unknown_ones_are_refused()
    {
        var router = await StartAsync();

        Assert.Equal(new RoleAssignment("beta", "alpha"), (await router.Ask<RolesChanged>(new AssignDashboard("beta"), TurnTimeout)).Roles);
        Assert.Equal(new RoleAssignment("beta", "alpha"), (await router.Ask<RolesChanged>(new AssignDashboard("beta"), TurnTimeout)).Roles);
        var refused = await router.Ask<RoleChangeRejected>(new AssignDashboard("nobody"), TurnTimeout);
        Assert.Equal("no account 'nobody' (accounts: alpha, beta)", refused.Reason);
        var view = await router.Ask<AccountsView>(GetAccounts.Instance, TurnTimeout);
        Assert.Equal([("alpha", (Role?)Role.QuickTurn), ("beta", Role.Dashboard)], view.Accounts.Select(a => (a.Status.AccountId, a.Role)));
    }

    [Fact]
    public async Task Role_status_shows_which_account_is_busy_with_which_session()
    {
        var router = await StartAsync();

        var status = await StatusWhileADashboardTurnRunsAsync(router, "ses_abc");

        Assert.Equal(new RoleStatus(new RoleSlot("alpha", true, "ses_abc"), new RoleSlot("beta", false, null)), status);
    }

    [Fact]
    public async Task With_one_account_serving_both_roles_each_role_shows_its_own_process()
    {
        var two = Sandbox.Settings(FakeClaudeCli.Path);
        var router = this.StartAccounts(two with { Accounts = [two.Accounts[0]], Roles = new Konsole.Actors.Configuration.RoleSettings("alpha", "alpha") });
        await this.WaitUntilWarmAsync(router);

        var status = await StatusWhileADashboardTurnRunsAsync(router, "ses_abc");

        Assert.Equal(new RoleStatus(new RoleSlot("alpha", true, "ses_abc"), new RoleSlot("alpha", false, null)), status);
    }

    [Fact]
    public async Task An_account_whose_config_dir_cannot_be_created_fails_and_its_prompts_are_answered_not_lost()
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path);
        var blocker = Path.Combine(Sandbox.Root, "a-file");
        File.WriteAllText(blocker, "not a directory");
        var alpha = settings.Accounts[0] with { ConfigDir = Path.Combine(blocker, "alpha") };
        var router = this.StartAccounts(settings with { Accounts = [alpha, settings.Accounts[1]] });

        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Failed, (await StatusOfAsync(router, "alpha")).State), TurnTimeout);

        var reason = (await StatusOfAsync(router, "alpha")).StateReason;
        Assert.Contains("config dir", reason);
        await AwaitAssertAsync(async () => Assert.Equal($"failed: alpha ({reason})", // not "still starting", once beta is warm
            (await router.Ask<Readiness>(GetReadiness.Instance, TurnTimeout)).Waiting), TurnTimeout);
        Assert.Contains(BetaDir, (await RouteAsync(router, Role.Dashboard, $"hi {WhoServes}")).ResultText); // the healthy account serves
        var (prompt, caller) = NewPrompt("on alpha");
        router.Tell(new RouteToAccount("alpha", ProcessMode.Full, prompt));
        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await caller.ReceiveTurnAsync(TurnTimeout)).Failed!.Code);
    }

    [Fact]
    public async Task An_account_actor_that_stops_is_taken_out_of_routing_and_prompts_for_it_are_answered()
    {
        var router = await StartAsync();

        Sys.ActorSelection(router.Path / "alpha").Tell(Kill.Instance);

        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Failed, (await StatusOfAsync(router, "alpha")).State), TurnTimeout);
        Assert.Contains(BetaDir, (await RouteAsync(router, Role.Dashboard, $"hi {WhoServes}")).ResultText);
        var (prompt, caller) = NewPrompt("on alpha");
        router.Tell(new RouteToAccount("alpha", ProcessMode.Full, prompt));
        var failed = (await caller.ReceiveTurnAsync(TurnTimeout)).Failed!;
        Assert.Equal((TurnErrorCodes.AccountUnavailable, "account alpha stopped"), (failed.Code, failed.Message));
    }

    [Fact]
    public async Task An_account_that_keeps_throwing_is_restarted_up_to_the_restart_limit_then_stopped_and_taken_out_of_routing()
    {
        var router = await StartAsync("konsole.claude.restart.max-restarts = 3");
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);

        alpha.Tell(new AccountProtocol.SubmitPrompt(null!, ProcessMode.Full)); // as a bug would: the account throws, and is restarted
        await alpha.Ask<AccountProtocol.AccountStatus>(AccountProtocol.GetStatus.Instance, TurnTimeout); // answered once restarted
        var (prompt, caller) = NewPrompt("after one restart");
        router.Tell(new RouteToAccount("alpha", ProcessMode.Full, prompt));
        Assert.Equal("echo: after one restart", (await caller.ReceiveTurnAsync(TurnTimeout)).ResultText);
        alpha.Tell(new AccountProtocol.SubmitPrompt(null!, ProcessMode.Full));
        alpha.Tell(new AccountProtocol.SubmitPrompt(null!, ProcessMode.Full)); // the third restart: the last one allowed
        await alpha.Ask<AccountProtocol.AccountStatus>(AccountProtocol.GetStatus.Instance, TurnTimeout); // still there to answer
        alpha.Tell(new AccountProtocol.SubmitPrompt(null!, ProcessMode.Full));

        await AwaitAssertAsync(async () => Assert.Equal((AccountState.Failed, "its actor stopped"),
            (await StatusOfAsync(router, "alpha")) is var status ? (status.State, status.StateReason) : default), TurnTimeout);
        Assert.Contains(BetaDir, (await RouteAsync(router, Role.Dashboard, $"hi {WhoServes}")).ResultText);
    }

    [Fact]
    public async Task A_credentials_read_begun_before_the_account_restarted_neither_overrides_nor_hides_the_reads_after_it()
    {
        var router = await StartAsync();
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);
        for (var i = 0; i < 3; i++)
            await RouteAsync(router, Role.Dashboard, $"turn {i}"); // each turn ends with a read: the first instance's reads outnumber the next's
        var file = Path.Combine(AlphaDir, AccountCredentials.FileName);
        var aside = file + ".pipe";
        var before = DateTimeOffset.UtcNow.AddHours(5);
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], before);
        var stale = await File.ReadAllBytesAsync(file);
        File.Delete(file);
        Assert.Equal(0, MakeFifo(file, 0b110_000_000));

        await RouteAsync(router, Role.Dashboard, "its read waits on the pipe");
        // The writer's open returns once that read has the pipe open; it then waits for what is written.
        var writer = await Task.Run(() => new FileStream(file, FileMode.Open, FileAccess.Write)).WaitAsync(TurnTimeout);
        File.Move(file, aside);
        var after = DateTimeOffset.UtcNow.AddHours(10);
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], after);
        alpha.Tell(new AccountProtocol.SubmitPrompt(null!, ProcessMode.Full)); // as a bug would: the account throws, and is restarted
        await AwaitAssertAsync(async () => Assert.Equal(after.ToUnixTimeMilliseconds(), (await StatusOf(alpha)).ExpiresAt?.ToUnixTimeMilliseconds()),
            TurnTimeout);
        await using (writer)
            await writer.WriteAsync(stale);
        await AwaitAssertAsync(() => Assert.False(HasReader(aside)), TurnTimeout); // the first instance's read is done, and told
        await RouteAsync(router, Role.Dashboard, "read again after this turn");
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], after.AddHours(1));
        await RouteAsync(router, Role.Dashboard, "and after this one");

        await AwaitAssertAsync(async () => Assert.Equal(after.AddHours(1).ToUnixTimeMilliseconds(),
            (await StatusOf(alpha)).ExpiresAt?.ToUnixTimeMilliseconds()), TurnTimeout);
    }

    [Fact]
    public async Task A_refresh_for_an_account_whose_actor_stopped_is_refused_at_once()
    {
        var router = await StartAsync();

        Sys.ActorSelection(router.Path / "alpha").Tell(Kill.Instance);
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Failed, (await StatusOfAsync(router, "alpha")).State), TurnTimeout);

        var refused = await router.Ask<AccountProtocol.RefreshRefused>(new RefreshAccount("alpha"), TimeSpan.FromSeconds(5));
        Assert.Equal(("alpha", TurnErrorCodes.AccountUnavailable), (refused.AccountId, refused.Code));
        Assert.Contains("stopped", refused.Reason);
    }

    [Fact]
    public async Task An_account_actor_that_stops_during_a_turn_no_longer_counts_as_busy_or_as_having_processes()
    {
        var router = await StartAsync();
        var running = NewPrompt($"{Long} busy", session: "ses_abc");
        router.Tell(new RoutePrompt(Role.Dashboard, running.Prompt));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);

        Sys.ActorSelection(router.Path / "alpha").Tell(Kill.Instance);

        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await running.Caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Failed, (await StatusOfAsync(router, "alpha")).State), TurnTimeout);
        Assert.Equal(new WorkInProgress(0, 0), await router.Ask<WorkInProgress>(GetWorkInProgress.Instance, TurnTimeout)); // a drain does not wait on it
        Assert.Equal(new RoleSlot("alpha", false, null), (await router.Ask<RoleStatus>(GetRoleStatus.Instance, TurnTimeout)).Dashboard);
        Assert.Empty((await StatusOfAsync(router, "alpha")).Processes);
    }

    [Fact]
    public async Task A_refresh_still_in_flight_when_its_account_actor_stops_is_waited_for_by_a_drain()
    {
        await using var tokens = await FakeTokenEndpoint.StartAsync();
        tokens.Accept(Sandbox.Accounts[0].RefreshToken);
        tokens.Hold();
        var router = await StartAsync($"konsole.oauth.token-endpoint = \"{tokens.Url}\"");
        await router.Ask<AccountProtocol.RefreshScheduled>(new RefreshAccount("alpha"), TurnTimeout);
        await tokens.WaitForRequestAsync(_ => true, TurnTimeout);

        Sys.ActorSelection(router.Path / "alpha").Tell(Kill.Instance); // the refresh goes on without it
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Failed, (await StatusOfAsync(router, "alpha")).State), TurnTimeout);

        // The host must not exit with the refresh token spent and the new one not yet on disk.
        Assert.Equal(new WorkInProgress(0, 1), await router.Ask<WorkInProgress>(GetWorkInProgress.Instance, TurnTimeout));
        tokens.Release();
        await AwaitAssertAsync(async () => Assert.Equal(new WorkInProgress(0, 0),
            await router.Ask<WorkInProgress>(GetWorkInProgress.Instance, TurnTimeout)), TurnTimeout);
    }

    /// <summary>The role status asked while a long dashboard turn of <paramref name="session"/> runs (it is interrupted after).</summary>
    private async Task<RoleStatus> StatusWhileADashboardTurnRunsAsync(IActorRef router, string session)
    {
        var running = NewPrompt($"{Long} busy", session: session);
        router.Tell(new RoutePrompt(Role.Dashboard, running.Prompt));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var status = await router.Ask<RoleStatus>(GetRoleStatus.Instance, TurnTimeout);
        router.Tell(new InterruptPrompt(running.Prompt.PromptId));
        await running.Caller.ReceiveTurnAsync(TurnTimeout);
        return status;
    }

    [Fact]
    public async Task A_rejected_rate_limit_moves_the_roles_traffic_to_a_healthy_account_and_with_none_left_prompts_fail_at_once()
    {
        var limited = EventsOf(typeof(AccountProtocol.AccountRateLimited));
        var router = await StartAsync();

        var hit = await RouteAsync(router, Role.Dashboard, "[[rate-limit]] too much");
        Assert.True(hit.Completed!.Result.IsError);
        Assert.Equal(("alpha", "rejected"), ((await limited.ExpectMsgAsync<AccountProtocol.AccountRateLimited>()) is var e ? (e.AccountId, e.Status) : default));
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.RateLimited, (await StatusOfAsync(router, "alpha")).State), TurnTimeout);

        var moved = await RouteAsync(router, Role.Dashboard, $"where now? {WhoServes}");
        Assert.Contains(BetaDir, moved.ResultText);
        Assert.DoesNotContain("\"tools\":[]", Init(moved)); // still a full turn, on beta's full process

        await RouteAsync(router, Role.QuickTurn, "[[rate-limit]] beta too");
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.RateLimited, (await StatusOfAsync(router, "beta")).State), TurnTimeout);
        var (prompt, caller) = NewPrompt("anyone?");
        router.Tell(new RoutePrompt(Role.Dashboard, prompt));
        var refused = await caller.ExpectMsgAsync<TurnFailed>(TurnTimeout);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, refused.Code);
        Assert.Contains("alpha RateLimited (rate-limited until", refused.Message);
        Assert.InRange(refused.RetryAfter!.Value, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61));
    }

    [Fact]
    public async Task Prompts_queued_on_an_account_when_it_hits_its_rate_limit_go_to_a_healthy_one_and_a_workers_fail_at_once()
    {
        var router = await StartAsync();
        var hit = NewPrompt("[[delay:3000]] [[rate-limit]] over");
        router.Tell(new RoutePrompt(Role.Dashboard, hit.Prompt));
        await hit.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.IsInit: true }, TurnTimeout);
        var behind = NewPrompt($"queued behind it {WhoServes}", session: "ses-2");
        router.Tell(new RoutePrompt(Role.Dashboard, behind.Prompt));
        Assert.Equal("alpha", (await behind.Caller.ExpectMsgAsync<PromptQueued>(TurnTimeout)).AccountId);

        var limited = await hit.Caller.ReceiveTurnAsync(TurnTimeout);
        var moved = await behind.Caller.ReceiveTurnAsync(TurnTimeout);
        var worker = NewPrompt("a worker on alpha", session: "worker-1");
        router.Tell(new RouteToAccount("alpha", ProcessMode.Worker, worker.Prompt));
        var refused = await worker.Caller.ExpectMsgAsync<TurnFailed>(TurnTimeout);

        Assert.True(limited.Completed!.Result.IsError);
        Assert.Contains(BetaDir, moved.ResultText); // handed back, and routed to the healthy account
        Assert.Equal(TurnErrorCodes.AccountUnavailable, refused.Code);
        Assert.Contains("rate-limited until", refused.Message);
        Assert.InRange(refused.RetryAfter!.Value, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61));
    }

    [Fact]
    public async Task An_account_close_to_its_limit_gets_no_new_role_traffic_while_another_is_healthy()
    {
        var router = await StartAsync();

        await RouteAsync(router, Role.Dashboard, "[[rate-warning:0.5]] half");
        Assert.Contains(AlphaDir, (await RouteAsync(router, Role.Dashboard, $"still alpha {WhoServes}")).ResultText);
        await RouteAsync(router, Role.Dashboard, "[[rate-warning:0.95]] nearly");
        await AwaitAssertAsync(async () => Assert.Equal(0.95, (await StatusOfAsync(router, "alpha")).RateLimit?.Utilization), TurnTimeout);

        Assert.Contains(BetaDir, (await RouteAsync(router, Role.Dashboard, $"moved {WhoServes}")).ResultText);
        Assert.Contains(BetaDir, (await RouteAsync(router, Role.QuickTurn, $"quick {WhoServes}")).ResultText);
    }

    [Fact]
    public async Task A_rate_warning_ends_when_its_window_resets_and_the_account_gets_its_role_traffic_again()
    {
        var router = await StartAsync();
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);
        var limited = EventsOf(typeof(AccountProtocol.AccountRateLimited));

        // As a turn reports it: alpha's five-hour window 95 % used, resetting in 2 s.
        alpha.Tell(new HotProcessProtocol.RateLimitObserved(new RateLimitInfo("allowed_warning", DateTimeOffset.UtcNow.AddSeconds(2), "five_hour", 0.95)));
        await limited.ExpectMsgAsync<AccountProtocol.AccountRateLimited>(TurnTimeout);

        // Asked of alpha itself: once it answers so, the router has its status too (alpha told it first).
        await AwaitAssertAsync(async () => Assert.Null((await alpha.Ask<AccountProtocol.AccountStatus>(AccountProtocol.GetStatus.Instance, TurnTimeout)).RateLimit),
            TurnTimeout); // kept for good before
        Assert.Contains(AlphaDir, (await RouteAsync(router, Role.Dashboard, $"back on alpha {WhoServes}")).ResultText);
    }

    [Fact]
    public async Task A_limit_is_announced_once_though_several_turns_report_it_and_a_later_reset_moves_the_hold()
    {
        var router = await StartAsync();
        var alpha = await Sys.ActorSelection(router.Path / "alpha").ResolveOne(TurnTimeout);
        var limited = EventsOf(typeof(AccountProtocol.AccountRateLimited));
        async Task<AccountProtocol.AccountStatus> ReportAsync(string status, double? used, DateTimeOffset resets)
        {
            alpha.Tell(new HotProcessProtocol.RateLimitObserved(new RateLimitInfo(status, resets, "five_hour", used)));
            // Answered after the report is handled: an event it published is with the probe by then.
            return await alpha.Ask<AccountProtocol.AccountStatus>(AccountProtocol.GetStatus.Instance, TurnTimeout);
        }
        var window = DateTimeOffset.UtcNow.AddHours(1);

        await ReportAsync("allowed_warning", 0.95, window);
        await ReportAsync("allowed_warning", 0.97, window); // the next turn: still strained, not news
        Assert.Equal(0.95, (await limited.ExpectMsgAsync<AccountProtocol.AccountRateLimited>(TurnTimeout)).Utilization);
        Assert.False(limited.HasMessages);

        await ReportAsync("rejected", null, window);
        await ReportAsync("rejected", null, window); // the chat process's prompt, in flight, rejected too
        var later = await ReportAsync("rejected", null, window.AddHours(4)); // a longer window's: the hold lasts longer, as announced
        Assert.Equal("rejected", (await limited.ExpectMsgAsync<AccountProtocol.AccountRateLimited>(TurnTimeout)).Status);
        Assert.False(limited.HasMessages);
        Assert.Equal((AccountState.RateLimited, $"rate-limited until {window.AddHours(4):u}"), (later.State, later.StateReason));
        var earlier = await ReportAsync("rejected", null, window.AddMinutes(-30));
        Assert.Equal(later.StateReason, earlier.StateReason); // an earlier reset does not shorten it
        Assert.False(limited.HasMessages);
    }

    [Fact]
    public async Task An_account_whose_token_expired_and_cannot_be_refreshed_gets_no_role_traffic_while_another_is_healthy()
    {
        await using var tokens = await FakeTokenEndpoint.StartAsync(); // it knows no refresh token: invalid_grant
        KonsoleSandbox.WriteCredentials(Sandbox.Accounts[0], DateTimeOffset.UtcNow.AddMinutes(-5)); // alpha's login has lapsed
        var router = this.StartAccounts(Sandbox.Settings(FakeClaudeCli.Path, extraHocon: $"konsole.oauth.token-endpoint = \"{tokens.Url}\""));
        await this.WaitUntilWarmAsync(router);
        await AwaitAssertAsync(async () => Assert.NotNull((await StatusOfAsync(router, "alpha")).OAuthError), TurnTimeout); // refused at start

        Assert.Contains(BetaDir, (await RouteAsync(router, Role.Dashboard, $"moved {WhoServes}")).ResultText);
        tokens.Accept(Sandbox.Accounts[0].RefreshToken); // a new login, and a refresh asked for (POST /api/accounts/alpha/refresh)
        router.Tell(new RefreshAccount("alpha"));
        await AwaitAssertAsync(async () => Assert.Null((await StatusOfAsync(router, "alpha")).OAuthError), TurnTimeout);
        Assert.Contains(AlphaDir, (await RouteAsync(router, Role.Dashboard, $"back {WhoServes}")).ResultText);
    }

    [Fact]
    public async Task A_prompt_for_an_unknown_account_fails_with_account_unavailable()
    {
        var router = await StartAsync();
        var (prompt, caller) = NewPrompt("hello");

        router.Tell(new RouteToAccount("nobody", ProcessMode.Full, prompt));

        Assert.Equal(TurnErrorCodes.AccountUnavailable, (await caller.ReceiveTurnAsync(TurnTimeout)).Failed?.Code);
    }

    [Fact]
    public async Task Shutting_down_the_actor_system_leaves_no_CLI_process_behind()
    {
        var router = await StartAsync();
        var running = NewPrompt($"{Long} busy");
        router.Tell(new RoutePrompt(Role.Dashboard, running.Prompt));
        await running.Caller.FishForMessageAsync(m => m is TurnOutput { Frame.Type: "assistant" }, TurnTimeout);
        var processes = (await ProcessIdsAsync(router)).Select(Process.GetProcessById).ToList();
        Assert.Equal(4, processes.Count);

        await Sys.Terminate(); // runs coordinated shutdown, which waits for every CLI to exit

        Assert.All(processes, p => Assert.True(p.HasExited, $"pid {p.Id} still running"));
        Assert.Empty(LiveCliProcesses);
    }

    [Fact]
    public async Task Stopping_the_CLI_processes_does_not_wait_on_their_pid_records_when_the_run_dir_is_gone()
    {
        await StartAsync();
        var runDir = Path.Combine(Sandbox.Settings(FakeClaudeCli.Path).DataDir, "run"); // where the accounts' processes are recorded
        Assert.Equal(4, Directory.GetFiles(runDir).Length);

        Directory.Delete(runDir, recursive: true);
        await CliProcessTracker.Get(Sys).StopAllAsync().WaitAsync(TurnTimeout);

        Assert.Empty(LiveCliProcesses);
    }

    private string AlphaDir => Sandbox.Accounts[0].ConfigDir;
    private string BetaDir => Sandbox.Accounts[1].ConfigDir;

    private async Task<IActorRef> StartAsync(string extraHocon = "")
    {
        var router = this.StartAccounts(Sandbox.Settings(FakeClaudeCli.Path, extraHocon: extraHocon));
        await this.WaitUntilWarmAsync(router);
        return router;
    }

    private async Task<TurnRecord> RouteAsync(IActorRef router, Role role, string text, string session = "ses-1", ConversationRef? conversation = null)
    {
        var (prompt, caller) = NewPrompt(text, session, conversation);
        router.Tell(new RoutePrompt(role, prompt));
        return await caller.ReceiveTurnAsync(TurnTimeout);
    }

    private static async Task<AccountProtocol.AccountStatus> StatusOfAsync(IActorRef router, string accountId) =>
        (await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(5))).Accounts.Single(a => a.Status.AccountId == accountId).Status;

    private static async Task<int[]> ProcessIdsAsync(IActorRef router)
    {
        var view = await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(5));
        return view.Accounts.SelectMany(a => a.Status.Processes).Select(p => p.ProcessId!.Value).Order().ToArray();
    }

    private static string Init(TurnRecord turn) => turn.Outputs.Single(o => o.Frame.IsInit).Frame.Raw;

    private static Task<AccountProtocol.AccountStatus> StatusOf(IActorRef account) =>
        account.Ask<AccountProtocol.AccountStatus>(AccountProtocol.GetStatus.Instance, TimeSpan.FromSeconds(5));

    /// <summary>Whether a reader has the named pipe open: a writer's non-blocking open fails (ENXIO) when none has.</summary>
    private static bool HasReader(string fifo)
    {
        const int writeOnlyNonBlocking = 0x1 | 0x800;
        var fd = Open(fifo, writeOnlyNonBlocking);
        if (fd >= 0)
            Close(fd);
        return fd >= 0;
    }

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo(string path, uint mode);

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
}
