using Akka.Actor;
using Akka.TestKit;
using Konsole.Actors.Accounts;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Accounts.AccountProtocol;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Actors.Tests.Routing;

/// <summary>
/// The RoleRouter moving a worker session that waits for a place on alpha to beta, which has one free; probes stand in for
/// the accounts (and for the worker's session), so each spec stages the account's answer and what crosses it.
/// </summary>
public sealed class WorkerMoveSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 2)
{
    private const string Worker = "w1";
    private readonly ManualResetEventSlim _stop = new();
    private TestProbe _alpha = null!;
    private TestProbe _beta = null!;
    private IActorRef _router = null!;
    private TestProbe _session = null!;
    private Prompt _first = null!;

    [Fact]
    public async Task A_worker_whose_account_refuses_to_release_it_stays_there_and_the_prompts_held_meanwhile_follow_in_order()
    {
        await StartMoveAsync();
        var second = WorkerPrompt("second");
        var third = WorkerPrompt("third");
        _router.Tell(new RouteWorkerPrompt(second));
        _router.Tell(new RouteWorkerPrompt(third));

        _router.Tell(new WorkerNotReleased(Worker)); // its process started meanwhile, or the host drains

        Assert.Equal(second, (await _alpha.ExpectMsgAsync<SubmitPrompt>(TurnTimeout)).Prompt); // behind the first, still queued there
        Assert.Equal(third, (await _alpha.ExpectMsgAsync<SubmitPrompt>(TurnTimeout)).Prompt);
        await NoPromptBeforeFenceAsync("beta");
        Assert.Equal("alpha", await RecordedAccountAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_prompt_interrupted_while_the_move_holds_it_is_answered_interrupted_once_and_never_runs(bool released)
    {
        await StartMoveAsync();
        var second = WorkerPrompt("second");
        _router.Tell(new RouteWorkerPrompt(second));

        _router.Tell(new RoleRouterProtocol.InterruptPrompt(second.PromptId));
        _router.Tell(released ? new WaitingWorkerReleased(Worker, [_first]) : new WorkerNotReleased(Worker));

        if (released)
            Assert.Equal(_first, (await _beta.FishForMessageAsync<SubmitPrompt>(_ => true, TurnTimeout)).Prompt);
        await NoPromptBeforeFenceAsync(released ? "beta" : "alpha");
        Assert.Equal([(second.PromptId, TurnErrorCodes.Interrupted)], (await AnswersAsync()).OfType<TurnFailed>().Select(f => (f.PromptId, f.Code)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_worker_session_closed_during_its_move_gets_its_prompts_answered_session_closed_once_and_none_runs(bool released)
    {
        await StartMoveAsync();
        var second = WorkerPrompt("second");
        _router.Tell(new RouteWorkerPrompt(second));

        _router.Tell(new ReleaseSession(Worker));
        // Refused: its process started on alpha after all, which StopWorker closes (alpha answers the first prompt itself).
        _router.Tell(released ? new WaitingWorkerReleased(Worker, [_first]) : new WorkerNotReleased(Worker));

        await _alpha.FishForMessageAsync<StopWorker>(m => m.SessionId == Worker, TurnTimeout);
        await NoPromptBeforeFenceAsync("alpha");
        await NoPromptBeforeFenceAsync("beta");
        var closed = released ? new[] { second.PromptId, _first.PromptId } : [second.PromptId];
        Assert.Equal(closed.Select(id => (id, TurnErrorCodes.SessionClosed)),
            (await AnswersAsync()).OfType<TurnFailed>().Select(f => (f.PromptId, f.Code)));
    }

    [Theory]
    [InlineData(false, "alpha")]
    [InlineData(true, "beta")]
    public async Task A_worker_assigned_again_during_its_move_is_recorded_on_the_account_it_ends_up_on(bool released, string endsOn)
    {
        await StartMoveAsync();

        _router.Tell(new AssignWorker(Worker, "alpha"), _session.Ref); // as its session does when it starts again
        _router.Tell(released ? new WaitingWorkerReleased(Worker, [_first]) : new WorkerNotReleased(Worker));
        var next = WorkerPrompt("next");
        _router.Tell(new RouteWorkerPrompt(next));

        Assert.Equal(next, (await Account(endsOn).FishForMessageAsync<SubmitPrompt>(m => m.Prompt == next, TurnTimeout)).Prompt);
        Assert.Equal(endsOn, await RecordedAccountAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Prompts_held_for_a_worker_moving_off_an_account_that_stops_before_it_answers_go_where_it_moves_or_stay_for_the_restart(
        bool hostStopping)
    {
        await StartMoveAsync(durable: true);
        var second = WorkerPrompt("second") with { ConfirmDispatch = true };
        _router.Tell(new RouteWorkerPrompt(second));
        if (hostStopping)
            _router.Tell(new DrainAccounts(TimeSpan.FromSeconds(30)));

        var alpha = await Sys.ActorSelection(_router.Path / "alpha").ResolveOne(TurnTimeout);
        alpha.Tell(PoisonPill.Instance); // as a bug stops an account (its own prompts are answered by its PostStop)
        await AwaitAssertAsync(async () => Assert.Equal(AccountState.Failed,
            (await _router.Ask<AccountsView>(GetAccounts.Instance, TurnTimeout)).Accounts.Single(a => a.Status.AccountId == "alpha").Status.State), TurnTimeout);

        if (!hostStopping)
        {
            Assert.Equal(second, (await _beta.FishForMessageAsync<SubmitPrompt>(_ => true, TurnTimeout)).Prompt);
            Assert.Equal("beta", await RecordedAccountAsync());
            return;
        }
        // Beta, draining, would fail it: journaled by its session, it stays with it to run after the restart.
        await NoPromptBeforeFenceAsync("beta");
        Assert.Empty((await AnswersAsync()).OfType<TurnFailed>());
    }

    [Fact]
    public async Task Journaled_prompts_of_a_worker_released_as_the_host_begins_to_stop_stay_with_their_session_for_the_restart_instead_of_failing_elsewhere()
    {
        await StartMoveAsync(durable: true);
        var plain = WorkerPrompt("not journaled");
        var held = WorkerPrompt("held by the move") with { ConfirmDispatch = true };
        _router.Tell(new RouteWorkerPrompt(held));

        _router.Tell(new DrainAccounts(TimeSpan.FromSeconds(30)));
        _router.Tell(new WaitingWorkerReleased(Worker, [_first, plain])); // alpha released them before it heard of the drain

        // Beta, draining, would fail them: as where they waited, they are left to their journaling session to run after the restart.
        await NoPromptBeforeFenceAsync("beta");
        await NoPromptBeforeFenceAsync("alpha");
        var answers = await AnswersAsync();
        Assert.Equal([(plain.PromptId, TurnErrorCodes.AccountUnavailable)], answers.OfType<TurnFailed>().Select(f => (f.PromptId, f.Code)));
        Assert.Equal([_first.PromptId, held.PromptId], answers.OfType<PromptNotStarted>().Select(n => n.PromptId)); // their streams end so
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_prompt_sent_to_an_account_actor_as_it_stops_is_answered_not_lost(bool interrupted)
    {
        await StartAssignedAsync();
        var stopping = WorkerPrompt("stop here"); // alpha stops at it (as a bug stops an account)
        var next = WorkerPrompt("next");

        _router.Tell(new RouteWorkerPrompt(stopping));
        _router.Tell(new RouteWorkerPrompt(next));
        if (interrupted)
            _router.Tell(new RoleRouterProtocol.InterruptPrompt(next.PromptId)); // its interrupt waits in alpha's mailbox too
        await _router.Ask<WorkInProgress>(GetWorkInProgress.Instance, TurnTimeout); // all sent to alpha: next waits in its mailbox
        _stop.Set();

        var answer = await _session.FishForMessageAsync<TurnFailed>(f => f.PromptId == next.PromptId, TurnTimeout); // was never answered
        Assert.Equal(interrupted ? TurnErrorCodes.Interrupted : TurnErrorCodes.AccountUnavailable, answer.Code);
    }

    [Fact]
    public async Task With_no_account_available_retry_after_is_when_the_first_rate_limit_hold_ends()
    {
        await StartAssignedAsync();
        var now = DateTimeOffset.UtcNow;
        // Alpha failed, its last report an allowed one whose window reset ten minutes ago; beta rate-limited for an hour.
        _router.Tell(Status("alpha") with { State = AccountState.Failed, RateLimit = new RateLimitInfo("allowed", now.AddMinutes(-10), "five_hour", null) });
        _router.Tell(Status("beta") with
        {
            State = AccountState.RateLimited, RateLimit = new RateLimitInfo("rejected", now.AddHours(1), "five_hour", null), RateLimitedUntil = now.AddHours(1),
        });
        var prompt = new Prompt(Prompt.NewId(), "ui-1", "anyone?", null, _session.Ref);

        _router.Tell(new RoutePrompt(Role.Dashboard, prompt));

        var refused = await _session.FishForMessageAsync<TurnFailed>(f => f.PromptId == prompt.PromptId, TurnTimeout);
        Assert.Equal(TurnErrorCodes.AccountUnavailable, refused.Code);
        Assert.InRange(refused.RetryAfter ?? TimeSpan.Zero, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61)); // was none (5 s by default)
    }

    [Fact]
    public async Task A_worker_leaving_a_failed_account_goes_to_a_usable_one_not_to_a_failed_one_with_fewer_workers()
    {
        await StartAssignedAsync(); // w1 on alpha
        _router.Tell(new AssignWorker("w2", "beta"), CreateTestProbe().Ref); // beta has a worker
        _router.Tell(Status("alpha") with { State = AccountState.Failed, StateReason = "its processes crash" });
        // Beta near its limit: not healthy, but usable.
        _router.Tell(Status("beta") with { RateLimit = new RateLimitInfo("allowed_warning", DateTimeOffset.UtcNow.AddHours(3), "five_hour", 1.0) });
        var second = WorkerPrompt("second");

        _router.Tell(new RouteWorkerPrompt(second));

        // Before: alpha again, as it had fewer workers (failed and near-limit accounts ranked alike): every prompt refused there.
        Assert.Equal(second, (await _beta.FishForMessageAsync<SubmitPrompt>(s => s.Prompt.PromptId == second.PromptId, TurnTimeout)).Prompt);
    }

    /// <summary>
    /// Worker w1 assigned to alpha, its first prompt queued there, and alpha reporting that it waits for a place: the router
    /// asks alpha to release it, to move it to beta.
    /// </summary>
    private async Task StartMoveAsync(bool durable = false)
    {
        await StartAssignedAsync(durable);
        _router.Tell(Status("alpha", new ProcessStatus(ProcessMode.Worker, 3, true, null, 0, "w0", "w0"),
            new ProcessStatus(ProcessMode.Worker, null, false, null, 0, Worker, WaitsForPlace: true)));

        Assert.Equal(Worker, (await _alpha.ExpectMsgAsync<ReleaseWaitingWorker>(TurnTimeout)).SessionId);
    }

    /// <summary>Worker w1 assigned to alpha, its first prompt sent there.</summary>
    private async Task StartAssignedAsync(bool durable = false)
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: "konsole.sessions.max-workers = 1");
        _alpha = CreateTestProbe("alpha");
        _beta = CreateTestProbe("beta");
        _router = Sys.ActorOf(RoleRouter.Props(settings, a => Props.Create(() => new StandInAccount(a.Id == "alpha" ? _alpha.Ref : _beta.Ref, _stop))));
        _router.Tell(Status("alpha"));
        _router.Tell(Status("beta"));
        _session = CreateTestProbe("session");
        _router.Tell(new AssignWorker(Worker, "alpha"), _session.Ref);
        Assert.Equal("alpha", (await _session.ExpectMsgAsync<WorkerAssigned>(TurnTimeout)).AccountId);
        _first = WorkerPrompt("first") with { ConfirmDispatch = durable };
        _router.Tell(new RouteWorkerPrompt(_first));
        Assert.Equal(_first, (await _alpha.ExpectMsgAsync<SubmitPrompt>(TurnTimeout)).Prompt);
    }

    private Prompt WorkerPrompt(string text) => new(Prompt.NewId(), Worker, text, null, _session.Ref);

    private static AccountStatus Status(string accountId, params ProcessStatus[] workers) =>
        new(accountId, accountId, null, AccountState.Idle, null, 0, false, null, null,
            [new(ProcessMode.Full, 1, false, null, 0), new(ProcessMode.Chat, 2, false, null, 0), .. workers]);

    private TestProbe Account(string accountId) => accountId == "alpha" ? _alpha : _beta;

    /// <summary>The next prompt the account is sent is one routed to it now: none came before it.</summary>
    private async Task NoPromptBeforeFenceAsync(string accountId)
    {
        var fence = new Prompt(Prompt.NewId(), "fence", "fence", null, CreateTestProbe().Ref);
        _router.Tell(new RouteToAccount(accountId, ProcessMode.Full, fence));
        Assert.Equal(fence, (await Account(accountId).FishForMessageAsync<SubmitPrompt>(_ => true, TurnTimeout)).Prompt);
    }

    /// <summary>What the router has told the worker's session so far (a reply it sends now ends the list).</summary>
    private async Task<List<object>> AnswersAsync()
    {
        var fence = new Prompt(Prompt.NewId(), "fence", "fence", null, _session.Ref);
        _router.Tell(new RouteToAccount("nobody", ProcessMode.Worker, fence));
        var answers = new List<object>();
        while (await _session.ExpectMsgAsync<object>(TurnTimeout) is var answer && !(answer is TurnFailed f && f.PromptId == fence.PromptId))
            answers.Add(answer);
        return answers;
    }

    /// <summary>The account the worker's session has recorded: the last one the router told it (alpha, told at the start).</summary>
    private async Task<string> RecordedAccountAsync() =>
        (await AnswersAsync()).OfType<WorkerAssigned>().LastOrDefault()?.AccountId ?? "alpha";

    /// <summary>
    /// Stands in for an <see cref="AccountActor"/>: hands what the router sends it to a probe; at a prompt "stop here" it stops,
    /// once <paramref name="stop"/> is set (what the router sends it meanwhile waits in its mailbox).
    /// </summary>
    private sealed class StandInAccount : ReceiveActor
    {
        public StandInAccount(IActorRef probe, ManualResetEventSlim stop) => ReceiveAny(m =>
        {
            probe.Forward(m);
            if (m is SubmitPrompt { Prompt.Text: "stop here" } && stop.Wait(TurnTimeout))
                Context.Stop(Self);
        });
    }
}
