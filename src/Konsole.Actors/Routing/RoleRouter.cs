using Akka.Actor;
using Akka.Event;
using Konsole.Actors.Accounts;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Actors.Prompts;
using static Konsole.Actors.Accounts.AccountProtocol;
using static Konsole.Actors.Routing.RoleRouterProtocol;
using static Konsole.Actors.Routing.RolesJournalProtocol;

namespace Konsole.Actors.Routing;

/// <summary>
/// Maps the two kinds of traffic to accounts and owns the account actors. A role change is one message:
/// it takes effect for every prompt routed after it, while turns already running finish where they
/// started, and it starts or stops no process. Account status is pushed here by the accounts, so
/// queries are answered at once. Role changes are journaled (<see cref="RolesJournal"/>): after a restart the roles
/// are as they were (unless they name an account no longer configured). Messages wait until the journal has been read
/// back; a journal write that fails does not stop the routing: the journal starts again and records the roles then held.
/// </summary>
public sealed class RoleRouter : ReceiveActor, IWithUnboundedStash, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<string> _order = [];
    private readonly Dictionary<string, IActorRef> _accounts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AccountStatus> _status = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _workers = new(StringComparer.Ordinal); // worker session -> account
    private readonly Dictionary<string, string> _configDirs = new(StringComparer.Ordinal);
    // Worker sessions on their way to another account, by the account they wait on; their prompts sent meanwhile wait here.
    private readonly Dictionary<string, (string From, List<Prompt> Held)> _movingWorkers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _waitingForPlace = new(StringComparer.Ordinal); // accounts where a worker waits for a place
    private readonly int _maxWorkers;
    private readonly BackoffSettings _restart;
    private bool _draining;
    private readonly Dictionary<Role, string> _routedTo = []; // where each role's traffic went last, to log a failover once
    // Per user session, its last dashboard prompt and the account it went to, until the session closes.
    private readonly Dictionary<string, (string PromptId, string AccountId)> _lastDashboardPrompt = new(StringComparer.Ordinal);
    // Where the latest dashboard prompts handed back went: a later prompt of their session, handed back after them, follows them there.
    private readonly RecentValues<string> _handedBackTo = new(1024);
    private readonly double _rateLimitWarning;
    private RoleAssignment _roles;
    private readonly RoleAssignment _configured;
    private readonly HashSet<string> _stopped = [];
    // Prompts interrupted lately (see WasInterrupted): one an account was handing back as the interrupt went out must not run elsewhere.
    private readonly RecentIds _interrupted = new(1024);
    private IActorRef _journal = ActorRefs.Nobody;
    private bool _stopping; // StopRouter: stops once the journal has
    private readonly FaultBackoff _journalBackoff = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));

    /// <param name="accountProps">What runs each account; null: an <see cref="AccountActor"/> (a spec's stand-in otherwise).</param>
    public RoleRouter(KonsoleSettings settings, Func<AccountSettings, Props>? accountProps)
    {
        _roles = _configured = new RoleAssignment(settings.Roles.Dashboard, settings.Roles.QuickTurn);
        _rateLimitWarning = settings.RateLimitWarningUtilization;
        _maxWorkers = settings.Sessions.MaxWorkers;
        _restart = settings.Claude.Restart;
        foreach (var account in settings.Accounts)
        {
            _order.Add(account.Id);
            _status[account.Id] = AccountStatus.Starting(account);
            _configDirs[account.Id] = account.ConfigDir;
            _accounts[account.Id] = Context.Watch(Context.ActorOf(accountProps?.Invoke(account) ?? AccountActor.Props(account, settings), account.Id));
        }

        Receive<RolesRecovered>(m =>
        {
            // The roles last recorded (a swap's) stand over a restart, unless konsole.roles changed since: then the configuration's apply.
            if (m.ConfiguredThen is { } then && then != _configured)
            {
                _log.Info("Roles: konsole.roles changed since the roles were last recorded (dashboard {0}, quickturn {1}); the configured ones apply",
                    m.Roles?.Dashboard, m.Roles?.QuickTurn);
                _journal.Tell(new RecordRoles(_roles)); // else that swap would come back with a later start on the configuration it was made under
            }
            else if (m.Roles is { } roles && _accounts.ContainsKey(roles.Dashboard) && _accounts.ContainsKey(roles.QuickTurn))
                _roles = roles;
            _log.Info("Roles: dashboard {0}, quickturn {1}{2}", _roles.Dashboard, _roles.QuickTurn,
                _roles == _configured ? "" : " (as last swapped: a swap stands over a restart until konsole.roles changes)");
            Stash.UnstashAll();
            Context.System.EventStream.Subscribe(Self, typeof(DeadLetter)); // see Routing: prompts sent to an account as it stopped
            Become(Routing);
        });
        // A journal that cannot read the roles back (after a restart of this actor) is tried again; all else waits for the roles.
        WatchingTheJournal(rolesRead: false);
        Receive<GetReadiness>(_ => Sender.Tell(new Readiness("the roles are being read back from the journal")));
        Draining();
        ReceiveAny(_ => Stash.Stash());
    }

    public IStash Stash { get; set; } = null!;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(KonsoleSettings settings) => Akka.Actor.Props.Create(() => new RoleRouter(settings, null));

    internal static Props Props(KonsoleSettings settings, Func<AccountSettings, Props> accountProps) =>
        Akka.Actor.Props.Create(() => new RoleRouter(settings, accountProps));

    // An account that throws is restarted, its CLIs killed and started again. Akka's default would do that without end for one
    // that throws on every start or message (a fault in what it reads at start): past konsole.claude.restart's limit, as a
    // crashing CLI, it is stopped instead and taken out of routing. (Akka counts the window in int milliseconds: 24 days at most.)
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_restart.MaxRestarts,
        TimeSpan.FromMilliseconds(Math.Min(_restart.Window.TotalMilliseconds, int.MaxValue)), Akka.Actor.SupervisorStrategy.DefaultDecider);

    private Readiness ReadinessNow()
    {
        var failed = _order.Where(HasFailed).ToList();
        var starting = _order.Where(id => !_status[id].Warm && !failed.Contains(id)).ToList();
        var waits = new List<string>();
        if (starting.Count > 0)
            waits.Add($"hot processes still starting: {string.Join(", ", starting)}");
        if (failed.Count > 0)
            waits.Add($"failed: {string.Join(", ", failed.Select(id => $"{id} ({_status[id].StateReason})"))}");
        return waits.Count == 0 ? Readiness.Ready : new Readiness(string.Join("; ", waits));
    }

    private void Routing()
    {
        WatchingTheJournal(rolesRead: true);
        // A prompt sent to an account actor as it stopped (still in its mailbox, or sent before its Terminated came here) is
        // answered as that account's own queued ones are by its stop; lost, its caller would wait for ever.
        Receive<DeadLetter>(m =>
        {
            if (m.Message is not SubmitPrompt { Prompt: var prompt } || _accounts.FirstOrDefault(a => a.Value.Equals(m.Recipient)).Key is not { } accountId)
                return; // another actor's
            if (_draining)
                LeaveForTheRestart(accountId, [prompt]);
            else if (!EndedAsInterrupted(prompt))
                prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable, $"account {accountId} stopped"));
        });
        Receive<RoutePrompt>(m => Route(m.Role, m.Prompt));
        Receive<RouteToAccount>(m =>
        {
            if (_accounts.ContainsKey(m.AccountId))
                Submit(m.AccountId, m.Prompt, m.Mode);
            else
                m.Prompt.ReplyTo.Tell(new TurnFailed(m.Prompt.PromptId, TurnErrorCodes.AccountUnavailable, $"no account '{m.AccountId}'"));
        });
        // On its way elsewhere it is where it waits until its account releases it (a refusal leaves it there): the move tells its session.
        Receive<AssignWorker>(m => Sender.Tell(new WorkerAssigned(m.SessionId,
            _movingWorkers.TryGetValue(m.SessionId, out var moving) ? moving.From : WorkerAccount(m.SessionId, m.PreferredAccountId))));
        Receive<RouteWorkerPrompt>(m =>
        {
            if (_movingWorkers.TryGetValue(m.Prompt.UserSessionId, out var moving))
                moving.Held.Add(m.Prompt); // after the prompts its account hands back
            else
                RouteWorker(m.Prompt);
        });
        Receive<WaitingWorkerReleased>(m =>
        {
            if (!_movingWorkers.Remove(m.SessionId, out var moving))
            {
                // Its session closed meanwhile (and answered its prompts itself), as StopWorker would have closed it.
                FailClosed(m.SessionId, m.Prompts);
                return;
            }
            if (_draining)
            {
                _workers[m.SessionId] = moving.From;
                LeaveForTheRestart(moving.From, m.Prompts.Concat(moving.Held));
                return;
            }
            var prompts = m.Prompts.Concat(moving.Held).ToList();
            if (prompts.Count == 0)
            {
                _workers[m.SessionId] = moving.From; // nothing waited (interrupted meanwhile): it stays where it was
                return;
            }
            RouteMoved(m.SessionId, prompts);
        });
        Receive<WorkerNotReleased>(m =>
        {
            if (!_movingWorkers.Remove(m.SessionId, out var moving))
                return;
            _workers[m.SessionId] = moving.From;
            if (_draining)
                LeaveForTheRestart(moving.From, moving.Held);
            else
            {
                foreach (var prompt in moving.Held)
                    RouteWorker(prompt);
            }
        });
        Receive<ReleaseSession>(m =>
        {
            _lastDashboardPrompt.Remove(m.SessionId);
            if (_movingWorkers.Remove(m.SessionId, out var moving))
            {
                _accounts[moving.From].Tell(new StopWorker(m.SessionId)); // in case it started there after all
                FailClosed(m.SessionId, moving.Held);
            }
            if (_workers.Remove(m.SessionId, out var accountId))
                _accounts[accountId].Tell(new StopWorker(m.SessionId));
        });
        Receive<AccountStatus>(m =>
        {
            UpdateStatus(m);
            MoveWaitingWorkers();
        });
        Draining();
        Receive<RefreshAccount>(m =>
        {
            if (_stopped.Contains(m.AccountId))
                Sender.Tell(new RefreshRefused(m.AccountId, TurnErrorCodes.AccountUnavailable,
                    $"account {m.AccountId} stopped: its token is not refreshed until the host restarts"));
            else if (_accounts.TryGetValue(m.AccountId, out var account))
                account.Forward(RefreshCredentials.Instance);
            else
                Sender.Tell(new RefreshRefused(m.AccountId, "account_not_found", $"no account '{m.AccountId}' (accounts: {string.Join(", ", _order)})"));
        });
        Receive<RoleRouterProtocol.InterruptPrompt>(m =>
        {
            foreach (var account in _accounts.Values)
                account.Tell(new AccountProtocol.InterruptPrompt(m.PromptId));
            _interrupted.Add(m.Caller is null ? m.PromptId : Interruption(m.PromptId, m.Caller));
        });
        Receive<SwapRoles>(_ => ChangeRoles(new RoleAssignment(_roles.QuickTurn, _roles.Dashboard)));
        Receive<AssignDashboard>(m =>
        {
            if (!_accounts.ContainsKey(m.AccountId))
                Sender.Tell(new RoleChangeRejected($"no account '{m.AccountId}' (accounts: {string.Join(", ", _order)})"));
            else if (m.AccountId == _roles.Dashboard)
                ChangeRoles(_roles);
            else if (m.AccountId == _roles.QuickTurn)
                ChangeRoles(new RoleAssignment(_roles.QuickTurn, _roles.Dashboard));
            else
                ChangeRoles(new RoleAssignment(m.AccountId, _roles.Dashboard));
        });
        Receive<GetRoleStatus>(_ => Sender.Tell(new RoleStatus(SlotOf(Role.Dashboard), SlotOf(Role.QuickTurn))));
        Receive<GetReadiness>(_ => Sender.Tell(ReadinessNow()));
        Receive<GetAccounts>(_ => Sender.Tell(new AccountsView(_roles,
            _order.Select(id => new AccountView(_status[id], RoleOf(id))).ToArray())));
        Receive<PromptHandedBack>(m =>
        {
            if (!EndedAsInterrupted(m.Prompt))
                Route(m.Mode == ModeOf(Role.Dashboard) ? Role.Dashboard : Role.QuickTurn, m.Prompt, handedBackBy: m.AccountId);
        });
        Receive<RolesRecovered>(m =>
        {
            if (m.Roles != _roles && !_stopping) // stopping, it was given the roles to record as it stops
                _journal.Tell(new RecordRoles(_roles)); // a journal started again after a failed write catches up
        });
        Receive<Terminated>(m =>
        {
            if (_accounts.FirstOrDefault(a => a.Value.Equals(m.ActorRef)).Key is { } stopped)
            {
                // Only a bug stops an account (it fails itself otherwise): no prompt may go to it any more.
                _log.Error("Account {0} stopped; its prompts go to the other accounts until the host restarts", stopped);
                _stopped.Add(stopped);
                // Its processes went with it: a turn it ran must not look busy (a drain would wait for it) nor its processes count as hot.
                _status[stopped] = _status[stopped] with
                {
                    State = AccountState.Failed, StateReason = "its actor stopped", Processes = [], ActiveSessionId = null, QueueDepth = 0,
                    RefreshRunning = false,
                };
                // A worker moving off it gets no answer from it now: what its session sent meanwhile goes where it moves.
                _waitingForPlace.Remove(stopped);
                foreach (var (session, moving) in _movingWorkers.Where(m => m.Value.From == stopped).ToList())
                {
                    _movingWorkers.Remove(session);
                    if (_draining)
                    {
                        LeaveForTheRestart(_workers[session], moving.Held);
                        continue;
                    }
                    RouteMoved(session, moving.Held);
                }
            }
        });
    }

    /// <summary>
    /// In every behaviour, also while the roles are read back: a drain reaches the accounts at once (what is routed after it
    /// is refused), and is told what still runs.
    /// </summary>
    private void Draining()
    {
        Receive<DrainAccounts>(m =>
        {
            _draining = true;
            foreach (var account in _accounts.Values)
                account.Tell(new Drain(m.Timeout));
        });
        Receive<AccountStatus>(UpdateStatus);
        Receive<GetWorkInProgress>(_ => Sender.Tell(new WorkInProgress(_status.Values.Count(s => s.Busy), _status.Values.Count(Refreshing))));
    }

    // A stopped account's refresh goes on without it: the host's stop waits for it all the same (the refresh token is spent).
    private bool Refreshing(AccountStatus status) =>
        _stopped.Contains(status.AccountId) ? AccountActor.Refreshing(_configDirs[status.AccountId]) : status.RefreshRunning;

    private void UpdateStatus(AccountStatus status)
    {
        if (_stopped.Contains(status.AccountId))
            return;
        _status[status.AccountId] = status;
        if (status.Processes.Any(p => p.WaitsForPlace))
            _waitingForPlace.Add(status.AccountId);
        else
            _waitingForPlace.Remove(status.AccountId);
    }

    /// <summary>
    /// In every behaviour: a journal that stopped (a failed write, or a read back that failed) starts again after a backoff;
    /// on <see cref="StopRouter"/>, the router stops once its journal has.
    /// </summary>
    /// <param name="rolesRead">The roles were read back: those held now are the ones to record as the journal stops.</param>
    private void WatchingTheJournal(bool rolesRead)
    {
        Receive<StopRouter>(_ =>
        {
            _stopping = true;
            if (_journal.IsNobody())
            {
                // Waiting out its backoff after a failed write: started now, so the roles held meanwhile are recorded.
                Timers.Cancel(nameof(RestartJournal));
                _journal = StartJournal(firstStart: false);
            }
            _journal.Tell(new StopJournal(rolesRead ? _roles : null));
        });
        Receive<Terminated>(m => m.ActorRef.Equals(_journal), _ =>
        {
            _journal = ActorRefs.Nobody;
            if (_stopping)
            {
                Context.Stop(Self);
                return;
            }
            var backoff = _journalBackoff.Next();
            _log.Warning("The roles' journal stopped (a write failed, or it could not read the journal back); it starts again in {0:0.0}s", backoff.TotalSeconds);
            Timers.StartSingleTimer(nameof(RestartJournal), RestartJournal.Instance, backoff);
        });
        Receive<RestartJournal>(_ => _journal = StartJournal(firstStart: false)); // never while stopping: its timer is cancelled then
    }

    protected override void PreStart() => _journal = StartJournal(firstStart: true);

    // Started again after a fault: a journal it cannot read back then must not stop the host (only at the host's start).
    protected override void PostRestart(Exception reason) => _journal = StartJournal(firstStart: false);

    /// <summary>
    /// Interrupted lately. A session started again from its journal routes the prompts it had accepted again, under their
    /// ids: an interrupt its previous incarnation sent as it stopped is for the prompts that one sent, not for these.
    /// </summary>
    private bool WasInterrupted(Prompt prompt) =>
        _interrupted.Contains(prompt.PromptId) || _interrupted.Contains(Interruption(prompt.PromptId, prompt.ReplyTo));

    private static string Interruption(string promptId, IActorRef caller) => $"{promptId} {caller.Path.Uid}";

    private IActorRef StartJournal(bool firstStart) => Context.Watch(Context.ActorOf(RolesJournal.Props(firstStart, _configured), "journal"));

    private void ChangeRoles(RoleAssignment roles)
    {
        var previous = _roles;
        _roles = roles;
        Sender.Tell(new RolesChanged(roles));
        if (roles == previous)
            return;
        _log.Info("Roles: dashboard {0} (was {1}), quickturn {2} (was {3})", roles.Dashboard, previous.Dashboard, roles.QuickTurn, previous.QuickTurn);
        Context.System.EventStream.Publish(new AccountsSwapped(previous, roles));
        // A swap answers at once; the journal catches up a moment later without holding other messages back.
        _journal.Tell(new RecordRoles(roles));
    }

    /// <summary>
    /// Sends a prompt to its role's account, or, while that one is rate-limited, failed or close to its limit, to a
    /// healthy one (the other role's first). With none usable, the prompt fails at once with <c>account_unavailable</c>.
    /// A dashboard prompt its session sent while its previous one was still to run follows that one to its account (unless
    /// it failed), roles changed or not: it queues behind it there and continues the conversation as that turn leaves it.
    /// </summary>
    /// <param name="handedBackBy">The account that handed it back: it is the session's last only if no later prompt of it came since,
    /// and it does not follow its previous one back to that account, which would not keep it (its previous one is no longer there).</param>
    private void Route(Role role, Prompt prompt, string? handedBackBy = null)
    {
        var handedBack = handedBackBy is not null;
        if (role == Role.Dashboard && prompt.After is { } after && FollowedTo(prompt.UserSessionId, after) is { } previous && !HasFailed(previous)
            && previous != handedBackBy)
        {
            NoteDashboardRoute(prompt, previous, handedBack);
            Submit(previous, prompt, ProcessMode.Full);
            return;
        }
        var preferred = AccountOf(role);
        var other = role == Role.Dashboard ? _roles.QuickTurn : _roles.Dashboard;
        var candidates = _order.OrderBy(id => id == preferred ? 0 : id == other ? 1 : 2).ToList();
        var target = candidates.FirstOrDefault(Healthy) ?? candidates.FirstOrDefault(Usable);
        if (target is null)
        {
            // When the first rate-limit hold ends (an account failed, or one whose last report was no rejection, frees up no sooner).
            var reset = _status.Values.Where(s => s.State == AccountState.RateLimited).Select(s => s.RateLimitedUntil).Where(r => r is not null).Min();
            var retryAfter = reset is { } at && at > DateTimeOffset.UtcNow ? at - DateTimeOffset.UtcNow : (TimeSpan?)null;
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable,
                "no account can take it: " + string.Join("; ", _order.Select(id => $"{id} {ApiState(_status[id])}")), retryAfter));
            return;
        }
        if (_routedTo.GetValueOrDefault(role, preferred) != target)
            _log.Warning("{0} traffic goes to {1}: {2} is {3}", role, target, preferred, ApiState(_status[preferred]));
        _routedTo[role] = target;
        if (role == Role.Dashboard)
            NoteDashboardRoute(prompt, target, handedBack);
        Submit(target, prompt, ModeOf(role));
    }

    /// <summary>The account the session's prompt <paramref name="promptId"/> went to: its last, or one handed back and routed again.</summary>
    private string? FollowedTo(string session, string promptId) =>
        _lastDashboardPrompt.TryGetValue(session, out var last) && last.PromptId == promptId ? last.AccountId
        : _handedBackTo.TryGetValue(promptId, out var handedBackTo) ? handedBackTo : null;

    private void NoteDashboardRoute(Prompt prompt, string accountId, bool handedBack)
    {
        if (handedBack)
            _handedBackTo.Set(prompt.PromptId, accountId);
        if (!handedBack || !_lastDashboardPrompt.TryGetValue(prompt.UserSessionId, out var last) || last.PromptId == prompt.PromptId)
            _lastDashboardPrompt[prompt.UserSessionId] = (prompt.PromptId, accountId);
    }

    private void Submit(string accountId, Prompt prompt, ProcessMode mode)
    {
        if (_stopped.Contains(accountId))
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable, $"account {accountId} stopped"));
        else
            _accounts[accountId].Tell(new SubmitPrompt(prompt, mode));
    }

    private bool HasFailed(string accountId) => _status[accountId].State == AccountState.Failed;

    private bool Usable(string accountId) => _status[accountId].State is not (AccountState.Failed or AccountState.RateLimited);

    private bool Healthy(string accountId) =>
        Usable(accountId) && !NearItsLimit(_status[accountId]) && !LoginLapsed(_status[accountId]);

    private bool NearItsLimit(AccountStatus status) =>
        status.RateLimit is { Status: "allowed_warning", Utilization: { } used } && used >= _rateLimitWarning;

    /// <summary>Its OAuth token has expired and refreshing it failed: its turns would fail at the API.</summary>
    private static bool LoginLapsed(AccountStatus status) =>
        status.OAuthError is not null && status.ExpiresAt is { } expires && expires <= DateTimeOffset.UtcNow;

    private string ApiState(AccountStatus status) =>
        status.StateReason is { } reason ? $"{status.State} ({reason})"
        : LoginLapsed(status) ? $"without a valid login (its token expired at {status.ExpiresAt:u}, and {status.OAuthError})"
        : NearItsLimit(status) ? $"close to its rate limit ({status.RateLimit?.Utilization:P0} used)"
        : status.State.ToString();

    private void RouteWorker(Prompt prompt)
    {
        // Interrupted while a move held it here, or as its account handed it back: no account has it to interrupt.
        if (EndedAsInterrupted(prompt))
            return;
        var before = _workers.GetValueOrDefault(prompt.UserSessionId);
        var account = WorkerAccount(prompt.UserSessionId);
        if (before is not null && before != account)
            prompt.ReplyTo.Tell(new WorkerAssigned(prompt.UserSessionId, account)); // its session records where it runs now
        Submit(account, prompt, ProcessMode.Worker);
    }

    /// <summary>A worker's prompts, once it has moved: its session hears where it runs now (with the first), and they go there.</summary>
    private void RouteMoved(string session, IReadOnlyList<Prompt> prompts)
    {
        if (prompts.Count > 0)
            prompts[0].ReplyTo.Tell(new WorkerAssigned(session, _workers[session]));
        foreach (var prompt in prompts)
            RouteWorker(prompt);
    }

    /// <summary>
    /// Prompts of a worker's move (held back, or released by its account before it heard the host stops) once the host stops:
    /// sent on, they would fail; as where they waited, those their session journaled stay with it, to run after the restart.
    /// </summary>
    private void LeaveForTheRestart(string accountId, IEnumerable<Prompt> prompts)
    {
        foreach (var prompt in prompts)
        {
            if (EndedAsInterrupted(prompt))
                continue;
            prompt.ReplyTo.Tell(prompt.ConfirmDispatch
                ? new PromptNotStarted(prompt.PromptId) // its session keeps it for the restart, and tells its client so
                : new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable, $"account {accountId} stopped with the host"));
        }
    }

    /// <summary>A prompt interrupted lately (see <see cref="WasInterrupted"/>) that no account holds ends here; false: it was not.</summary>
    private bool EndedAsInterrupted(Prompt prompt)
    {
        if (!WasInterrupted(prompt))
            return false;
        prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.Interrupted, "interrupted while queued"));
        return true;
    }

    private static void FailClosed(string session, IEnumerable<Prompt> prompts)
    {
        foreach (var prompt in prompts)
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.SessionClosed, $"worker session {session} was closed"));
    }

    /// <summary>
    /// A worker session waiting on its account for a worker place (every place there runs a turn) moves to a healthy account
    /// with a place free, or held by an idle worker (which gives it up): no process of its runs, so its prompts (handed back by
    /// its account, in order) start there at no extra cost, a conversation it has resumed there as on a process of its own
    /// where it waited. Once the host stops, none moves.
    /// </summary>
    private void MoveWaitingWorkers()
    {
        if (_draining || _waitingForPlace.Count == 0)
            return;
        var waiting = _order.Where(id => !_stopped.Contains(id))
            .SelectMany(id => _status[id].Processes
                .Where(p => p.WaitsForPlace && p.WorkerSessionId is { } s && _workers.GetValueOrDefault(s) == id && !_movingWorkers.ContainsKey(s))
                .Select(p => (Session: p.WorkerSessionId!, From: id)))
            .ToList();
        foreach (var (session, from) in waiting)
        {
            if (_order.FirstOrDefault(id => id != from && Healthy(id) && WorkerPlacesToHave(id) > 0) is not { } to)
                return;
            _log.Info("Worker session {0} moves from account {1}, where it waits for a worker place, to {2}, which has one free or idle", session, from, to);
            _movingWorkers[session] = (from, []);
            _workers[session] = to; // its place there is taken from now on
            _accounts[from].Tell(new ReleaseWaitingWorker(session));
        }
    }

    /// <summary>The worker places on the account a worker moving there could have: free ones, and those of idle workers.</summary>
    private int WorkerPlacesToHave(string accountId) =>
        _maxWorkers
        - _status[accountId].Processes.Count(p => p is { Mode: ProcessMode.Worker, WaitsForPlace: false, Parked: false } && (p.Busy || p.ProcessId is null))
        - _movingWorkers.Keys.Count(s => _workers.GetValueOrDefault(s) == accountId);

    /// <summary>
    /// The account a worker session runs on: the one it has, unless that account failed (then, as role traffic does, it moves
    /// to a healthy one, its conversation with it).
    /// </summary>
    private string WorkerAccount(string sessionId, string? preferred = null)
    {
        if (_workers.TryGetValue(sessionId, out var assigned))
        {
            if (!HasFailed(assigned))
                return assigned;
            _log.Warning("Worker session {0} moves from account {1}, which failed ({2})", sessionId, assigned, _status[assigned].StateReason);
            _workers.Remove(sessionId);
        }
        var accountId = preferred is not null && _accounts.ContainsKey(preferred) && !HasFailed(preferred) ? preferred : _order
            .OrderBy(id => Healthy(id) ? 0 : Usable(id) ? 1 : 2) // near its limit before rate-limited or failed, as role traffic goes
            .ThenBy(id => _workers.Values.Count(a => a == id))
            .ThenBy(id => id == _roles.Dashboard ? 1 : 0)
            .First();
        _workers[sessionId] = accountId;
        return accountId;
    }

    private Role? RoleOf(string accountId) =>
        accountId == _roles.Dashboard ? Role.Dashboard
        : accountId == _roles.QuickTurn ? Role.QuickTurn
        : null;

    private string AccountOf(Role role) => role == Role.Dashboard ? _roles.Dashboard : _roles.QuickTurn;

    /// <summary>The process that serves a role on an account: dashboard turns are full turns, quick turns chat turns.</summary>
    private static ProcessMode ModeOf(Role role) => role == Role.Dashboard ? ProcessMode.Full : ProcessMode.Chat;

    /// <summary>A role's slot: its account and the process that serves the role there (one account may serve both).</summary>
    private RoleSlot SlotOf(Role role)
    {
        var accountId = AccountOf(role);
        return _status[accountId].Processes.FirstOrDefault(p => p.Mode == ModeOf(role)) is { } process
            ? new(accountId, process.Busy, process.ActiveSessionId)
            : new(accountId, false, null);
    }

    private sealed record RestartJournal
    {
        public static readonly RestartJournal Instance = new();
    }
}
