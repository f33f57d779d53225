using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;
using Konsole.Actors.Configuration;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using static Konsole.Actors.Accounts.AccountProtocol;
using static Konsole.Actors.Processes.HotProcessProtocol;

namespace Konsole.Actors.Accounts;

/// <summary>
/// One Claude account: owns a warm <see cref="ProcessMode.Full"/> and a warm <see cref="ProcessMode.Chat"/>
/// process, and a <see cref="ProcessMode.Worker"/> process for each worker session it serves (at most
/// <c>konsole.sessions.max-workers</c> at once; a later one takes the place of the one idle the longest, or waits while all run
/// turns, unless the router moves it to an account with a place free). Queues the prompts for
/// each process in order, and moves conversations between processes. A prompt
/// always continues its own conversation: when it lands on a process holding another one, that process
/// is restarted on it (<c>--resume</c>, with the transcript copied over from the account that wrote it);
/// a new conversation costs only a <c>/clear</c>. Crashed processes are restarted with backoff and
/// resume their conversation; prompts queued meanwhile wait for them.
/// </summary>
public sealed class AccountActor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan CredentialsPollInterval = TimeSpan.FromMinutes(1);
    private static readonly HttpClient TokenClient = OAuthRefresher.CreateClient();

    // By config dir, until an instance of its account has handled the result: a refresh outlives the instance that started it
    // (its parent restarts an account that throws), and the next instance waits for it instead of running turns during it.
    private static readonly ConcurrentDictionary<string, Task<OAuthRefreshed>> RefreshesInFlight = new(StringComparer.Ordinal);

    /// <summary>How long a prompt's session may take to confirm its dispatch (a database write) before the prompt is given up.</summary>
    private static readonly TimeSpan ConfirmationTimeout = TimeSpan.FromSeconds(30);

    private readonly AccountSettings _account;
    private readonly KonsoleSettings _settings;
    private readonly Func<HotProcessSpec, Props> _processProps;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<Slot> _slots = [new(ProcessMode.Full, "full"), new(ProcessMode.Chat, "chat")];
    private int _workers;
    private long _uses; // counts process starts and turns ended, so worker slots can be told apart by their last use
    private bool _busy; // a turn runs, whatever its state says (a restart of another process, ...): as last published
    // Per user session, the conversation its last turn here left, and that turn's prompt: a prompt its session sent before
    // hearing that turn end carries an older conversation (or none), and continues this one, whatever ran here in between.
    // (1,024 sessions: one pushed out only matters if its next prompt is still on its way.)
    private readonly RecentValues<(string PromptId, ConversationRef Conversation)> _lastTurns = new(1024);
    private AccountCredentials? _credentials;
    private RateLimitInfo? _rateLimit;
    private AccountState _state = AccountState.Starting;

    // A refresh waits (Pending) until no turn runs on the account, and prompts wait while it is pending or running.
    private RefreshState _refresh = RefreshState.None;
    private string? _failure; // why the account gave up, once it has
    private string? _oauthError; // why the last refresh failed, until one succeeds
    private int _refreshFailures; // in a row, for the retry backoff
    private readonly Guid _incarnation = Guid.NewGuid(); // a restart makes another instance; answers to the one before are told apart
    private DateTimeOffset? _refreshedTo; // the expiry and lifetime of the token the last refresh got
    private TimeSpan _refreshedLife;
    private DateTimeOffset? _refreshRefusedFor; // the expiry a refused refresh token had: no automatic refresh until the login changes
    private DateTimeOffset? _rateLimitedUntil;
    private long _credentialsReads; // credentials reads started, numbered; two may finish out of order
    // Reads numbered up to this are stale: started before a refresh rewrote the file, or older than a read already applied.
    private long _staleCredentialsReads;
    private bool _draining;
    private bool _drainExpired; // the host stops and its turns are being interrupted: none starts now

    /// <param name="processProps">What runs each process; null: a <see cref="HotProcessActor"/> (a spec's stand-in otherwise).</param>
    public AccountActor(AccountSettings account, KonsoleSettings settings, Func<HotProcessSpec, Props>? processProps)
    {
        _account = account;
        _settings = settings;
        _processProps = processProps ?? HotProcessActor.Props;

        Receive<SubmitPrompt>(OnSubmit);
        Receive<InterruptPrompt>(m => OnInterrupt(m.PromptId));
        Receive<StopWorker>(m => OnStopWorker(m.SessionId));
        Receive<ReleaseWaitingWorker>(m =>
        {
            // Parked without prompts (its router's view is from before they ran or were interrupted), it keeps its conversation here.
            if (_draining || _slots.FirstOrDefault(s => s.WorkerSession == m.SessionId) is not { WaitsForPlace: true } slot)
            {
                Sender.Tell(new WorkerNotReleased(m.SessionId));
                return;
            }
            _slots.Remove(slot);
            _log.Info("Account {0}: worker session {1} stops waiting here for a worker place", Id, m.SessionId);
            PublishStatus();
            // A worker parked here holds its conversation: a prompt following its last turn here (sent before its session heard
            // of it, naming an older conversation or none) continues it wherever it goes.
            Sender.Tell(new WaitingWorkerReleased(m.SessionId, slot.Queue.Select(OnItsConversation).ToList()));
        });
        Receive<RefreshCredentials>(_ =>
        {
            if (_account.UsesApiKey)
            {
                Sender.Tell(new RefreshRefused(Id, "not_oauth", $"account {Id} uses an API key (${_account.ApiKeyEnv}): it has no OAuth token to refresh"));
                return;
            }
            if (_account.Simulated)
            {
                // Its login is made up: sent to the real token endpoint it would only be refused.
                Sender.Tell(new RefreshRefused(Id, "not_oauth", $"account {Id} is simulated (--demo): it has no real OAuth login to refresh"));
                return;
            }
            if (_draining)
            {
                // None starts once the host stops (see StartRefreshIfIdle): "scheduled" would never come true.
                Sender.Tell(new RefreshRefused(Id, "shutting_down", $"the host is shutting down: account {Id}'s token is not refreshed now"));
                return;
            }
            Sender.Tell(new RefreshScheduled(Id));
            RequestRefresh();
        });
        Receive<RetryRefresh>(_ => RequestRefresh());
        Receive<RateLimitReset>(_ =>
        {
            if (_rateLimitedUntil is not null)
                _log.Info("Account {0}: its rate limit has reset", Id);
            _rateLimitedUntil = null;
            _rateLimit = null; // the rejection or warning is over: nothing is known of the limit until the next turn reports it
            PublishStatus();
        });
        Receive<RefreshFinished>(OnRefreshFinished);
        Receive<DispatchConfirmed>(m =>
        {
            if (ConfirmingSlot(m.PromptId) is not { } slot)
                return;
            slot.Confirming = null;
            Timers.Cancel($"{slot.Name}-confirm");
            Begin(slot);
        });
        Receive<DispatchRefused>(m =>
        {
            if (ConfirmingSlot(m.PromptId) is { } slot)
                Drop(slot, reply: null);
        });
        Receive<ConfirmationOverdue>(m =>
        {
            if (ConfirmingSlot(m.PromptId) is { } slot && slot.Name == m.Slot)
                Drop(slot, new TurnFailed(m.PromptId, TurnErrorCodes.AccountUnavailable, "its session did not confirm that it may run"));
        });
        Receive<Drain>(m =>
        {
            if (_draining)
                return; // the first deadline stands
            _draining = true;
            foreach (var queued in _slots.SelectMany(s => s.Queue))
                queued.ReplyTo.Tell(new PromptNotStarted(queued.PromptId)); // none starts from now on: its caller can say so now
            var running = _slots.Count(s => s.Running is not null);
            _log.Info("Account {0}: draining: {1} turn(s) running get {2:0.#}s to finish, {3} queued prompt(s) wait",
                Id, running, m.Timeout.TotalSeconds, _slots.Sum(s => s.Queue.Count));
            Timers.StartSingleTimer(nameof(DrainExpired), DrainExpired.Instance, m.Timeout);
        });
        Receive<DrainExpired>(_ =>
        {
            _drainExpired = true;
            foreach (var slot in _slots.Where(s => s is { Running: not null, Dispatched: true }))
            {
                _log.Warning("Account {0}: interrupting prompt {1}: the host is stopping", Id, slot.Running!.PromptId);
                slot.Process!.Tell(new InterruptTurn(slot.Running.PromptId));
            }
        });
        Receive<GetStatus>(_ => Sender.Tell(Status()));

        Receive<ProcessReady>(m => WithSlot(slot => OnReady(slot, m.ProcessId)));
        Receive<TurnFinished>(m => WithSlot(slot => OnTurnFinished(slot, m)));
        Receive<ProcessExited>(m => WithSlot(slot => OnProcessLost(slot, m.SessionId, m.Reason, m.TurnReported, m.SentTurn)));
        Receive<Terminated>(m =>
        {
            // Whether it had sent the running prompt is not known: it may have run.
            if (_slots.FirstOrDefault(s => s.Process?.Equals(m.ActorRef) == true) is { } slot)
                OnProcessLost(slot, null, "the process actor stopped", turnReported: null, sentTurn: slot.Running?.PromptId);
        });
        Receive<RateLimitObserved>(m => OnRateLimit(m.Info));

        Receive<RestartProcess>(m => WithSlot(m.Slot, slot => OnRestart(slot)));
        Receive<ConversationPrepared>(m =>
        {
            if (m.Incarnation == _incarnation) // slot names are used again by the instance after a restart
                WithSlot(m.Slot, slot => OnConversationPrepared(slot, m));
        });
        Receive<CredentialsRead>(m =>
        {
            if (m.Incarnation != _incarnation || m.Read <= _staleCredentialsReads)
                return; // numbered by the instance before a restart, or stale (see _staleCredentialsReads)
            _staleCredentialsReads = m.Read;
            if (m.Credentials != _credentials)
            {
                if (m.Credentials.ExpiresAt != _credentials?.ExpiresAt && _refresh == RefreshState.None)
                    _oauthError = null; // a new login (claude login, or the CLI's own refresh): an earlier failure no longer applies
                if (m.Credentials.Problem != _credentials?.Problem)
                {
                    if (m.Credentials.Problem is { } problem)
                        _log.Warning("Account {0}: {1}", Id, problem);
                    else if (_credentials is not null)
                        _log.Info("Account {0}: its OAuth login can be read again", Id);
                }
                _credentials = m.Credentials;
                PublishStatus();
            }
            RefreshIfExpiring();
        });
        Receive<PollCredentials>(_ => ReadCredentials());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(AccountSettings account, KonsoleSettings settings) =>
        Akka.Actor.Props.Create(() => new AccountActor(account, settings, null));

    internal static Props Props(AccountSettings account, KonsoleSettings settings, Func<HotProcessSpec, Props> processProps) =>
        Akka.Actor.Props.Create(() => new AccountActor(account, settings, processProps));

    /// <summary>A refresh of the login in <paramref name="configDir"/> still runs (its account's actor may have stopped meanwhile).</summary>
    internal static bool Refreshing(string configDir) => RefreshesInFlight.TryGetValue(configDir, out var refresh) && !refresh.IsCompleted;

    private string Id => _account.Id;

    // A process actor that misbehaves is stopped, not restarted: its running turn must end with an error,
    // which only this actor can report (it sees Terminated and restarts the process with backoff).
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    protected override void PreStart()
    {
        try
        {
            Directory.CreateDirectory(_account.ConfigDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Thrown from here the actor would only be stopped, and the prompts routed to it lost: it fails instead, answering them.
            FailAccount($"its config dir {_account.ConfigDir} cannot be created ({e.Message})");
            return;
        }
        _log.Info("Account {0} ({1}): starting its full and chat processes, config dir {2}{3}",
            Id, _account.Label, _account.ConfigDir, _account.UsesApiKey ? $", API key from ${_account.ApiKeyEnv}" : "");
        foreach (var slot in _slots)
            StartProcess(slot, resume: null);
        if (!_account.UsesApiKey)
        {
            if (RefreshesInFlight.TryGetValue(_account.ConfigDir, out var inFlight))
            {
                _log.Info("Account {0}: the refresh of its OAuth token begun before it was restarted still runs; prompts wait for it", Id);
                AwaitRefresh(inFlight);
            }
            ReadCredentials();
            Timers.StartPeriodicTimer(nameof(PollCredentials), PollCredentials.Instance, CredentialsPollInterval);
        }
        PublishStatus();
    }

    protected override void PostStop()
    {
        foreach (var slot in _slots)
        {
            foreach (var prompt in slot.Queue.Append(slot.Running).OfType<Prompt>())
            {
                // The host is stopping: a prompt that never reached the CLI stays with its (journaling) session, to run after the restart.
                if (_draining && prompt.ConfirmDispatch && !(prompt == slot.Running && slot.Dispatched))
                    continue;
                prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable,
                    _draining ? $"account {Id} stopped with the host" : $"account {Id} stopped"));
            }
        }
    }

    private void OnSubmit(SubmitPrompt submit)
    {
        var prompt = submit.Prompt;
        // The host is stopping: a prompt its session journaled (handed on from another account) waits here with those queued
        // at the drain, and stays with its session to run after the restart (see PostStop); refused, its session would end it.
        if (_draining && prompt.ConfirmDispatch && _failure is null)
        {
            var kept = SlotOf(submit);
            kept.Queue.AddLast(prompt);
            prompt.ReplyTo.Tell(new PromptQueued(prompt.PromptId, Id, kept.Queue.Count));
            prompt.ReplyTo.Tell(new PromptNotStarted(prompt.PromptId));
            PublishStatus();
            return;
        }
        if (_failure is not null || _draining)
        {
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable,
                _failure is not null ? $"account {Id} failed: {_failure}" : "the host is shutting down"));
            return;
        }
        var roleSlot = submit.Mode == ProcessMode.Worker ? null : SlotFor(submit.Mode);
        if (RateLimitedFor() is not null && !(roleSlot is not null && FollowsOneStillHere(roleSlot, prompt)))
        {
            HandOn(prompt, submit.Mode, roleSlot);
            return;
        }
        var waiting = _slots.Sum(s => s.Queue.Count);
        if (waiting >= _settings.QueueMaxDepth)
        {
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.QueueFull,
                $"account {Id} already has {waiting} prompts waiting (konsole.queue.max-depth = {_settings.QueueMaxDepth})"));
            return;
        }
        var slot = SlotOf(submit);
        slot.Queue.AddLast(prompt);
        if (slot.WaitsForPlace && !TakeWorkerPlace(slot) && slot.Queue.Count == 1)
        {
            slot.LastUse = ++_uses; // when it began to wait: places go to waiting workers in that order
            _log.Info("Account {0}: worker session {1} waits for a worker place (all {2} busy, konsole.sessions.max-workers = {3})",
                Id, slot.WorkerSession, RunningWorkers, _settings.Sessions.MaxWorkers);
        }
        if (slot.CanDispatch && _refresh == RefreshState.None && !_draining)
        {
            Dispatch(slot); // publishes the new status
            return;
        }
        prompt.ReplyTo.Tell(new PromptQueued(prompt.PromptId, Id, slot.Queue.Count));
        PublishStatus();
    }

    /// <summary>The slot a submitted prompt queues in: its worker session's, or its mode's.</summary>
    private Slot SlotOf(SubmitPrompt submit) =>
        submit.Mode == ProcessMode.Worker ? WorkerSlot(submit.Prompt.UserSessionId) : SlotFor(submit.Mode);

    private void OnInterrupt(string promptId)
    {
        foreach (var slot in _slots)
        {
            if (slot.Queue.FirstOrDefault(p => p.PromptId == promptId) is { } queued)
            {
                slot.Queue.Remove(queued);
                queued.ReplyTo.Tell(new TurnFailed(promptId, TurnErrorCodes.Interrupted, "interrupted while queued"));
                AnnouncePositions(slot);
                if (slot.Mode == ProcessMode.Worker)
                    StartWaitingWorkers(); // its process may be idle now (its prompt was held back by a refresh)
                PublishStatus();
                return;
            }
            if (slot.Running?.PromptId != promptId)
                continue;
            if (slot.Dispatched)
            {
                slot.InterruptAsked = promptId;
                slot.Process!.Tell(new InterruptTurn(promptId));
                return;
            }
            // Its process is still being restarted on its conversation, or its session is confirming: it never reached the CLI.
            Drop(slot, new TurnFailed(promptId, TurnErrorCodes.Interrupted, "interrupted before it started"));
            return;
        }
    }

    /// <summary>The worker slot of <paramref name="sessionId"/>; its process starts once it has a prompt and a place (<see cref="TakeWorkerPlace"/>).</summary>
    private Slot WorkerSlot(string sessionId)
    {
        if (_slots.FirstOrDefault(s => s.WorkerSession == sessionId) is { } existing)
            return existing;
        var slot = new Slot(ProcessMode.Worker, $"worker-{++_workers}") { WorkerSession = sessionId };
        _slots.Add(slot);
        return slot;
    }

    private int RunningWorkers => _slots.Count(s => s.Mode == ProcessMode.Worker && s.Started);

    /// <summary>
    /// Starts the process of a worker slot with prompts waiting: on a free worker place, else on the place of the worker idle
    /// the longest, whose process stops (its conversation is resumed with its next prompt). False when every place is busy.
    /// </summary>
    private bool TakeWorkerPlace(Slot slot)
    {
        if (RunningWorkers >= _settings.Sessions.MaxWorkers)
        {
            // Idle: its process waits for a prompt, or it is lost and waits out its restart's backoff (no turn runs there either).
            if (_slots.Where(s => s is { Mode: ProcessMode.Worker, Started: true, Running: null } && s.Queue.Count == 0
                        && (s.ProcessId is not null || s is { Restarting: true, Process: null }))
                    .MinBy(s => s.LastUse) is not { } idle)
                return false;
            _log.Info("Account {0}: worker session {1}, idle, gives its place to worker session {2} (konsole.sessions.max-workers = {3}): " +
                "its process stops, and its conversation is resumed with its next prompt", Id, idle.WorkerSession, slot.WorkerSession,
                _settings.Sessions.MaxWorkers);
            StopProcess(idle);
            Timers.Cancel(idle.Name);
            idle.Restarting = false;
            idle.Started = false;
        }
        StartProcess(slot, resume: slot.Held?.SessionId);
        return true;
    }

    private void StartWaitingWorkers()
    {
        if (_failure is not null || _draining)
            return;
        foreach (var waiting in _slots.Where(s => s.WaitsForPlace).OrderBy(s => s.LastUse).ToList())
        {
            if (!TakeWorkerPlace(waiting))
                return;
        }
    }

    private void OnStopWorker(string sessionId)
    {
        if (_slots.FirstOrDefault(s => s.WorkerSession == sessionId) is not { } slot)
            return;
        _slots.Remove(slot);
        Timers.Cancel(slot.Name);
        StopProcess(slot);
        foreach (var prompt in slot.Queue.Append(slot.Running).OfType<Prompt>())
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.SessionClosed, $"worker session {sessionId} was closed"));
        _log.Info("Account {0}: worker session {1} closed; its process stops", Id, sessionId);
        StartRefreshIfIdle();
        StartWaitingWorkers();
        PublishStatus();
    }

    private void RequestRefresh()
    {
        Timers.Cancel(nameof(RetryRefresh));
        if (_refresh == RefreshState.None)
            _refresh = RefreshState.Pending;
        StartRefreshIfIdle();
    }

    /// <summary>Refreshes on its own once the token expires within <c>oauth.refresh-threshold</c>, unless the last refresh token was refused.</summary>
    private void RefreshIfExpiring()
    {
        if (_account.UsesApiKey || _account.Simulated || _credentials?.ExpiresAt is not { } expiresAt || _refresh != RefreshState.None
            || Timers.IsTimerActive(nameof(RetryRefresh)) || _refreshRefusedFor == expiresAt)
            return;
        var left = expiresAt - DateTimeOffset.UtcNow;
        // Tokens that live less than the threshold (a server's choice) are refreshed at half their life, not over and over.
        var threshold = expiresAt == _refreshedTo && _refreshedLife / 2 < _settings.OAuth.RefreshThreshold
            ? _refreshedLife / 2
            : _settings.OAuth.RefreshThreshold;
        if (left >= threshold)
            return;
        _log.Info("Account {0}: its OAuth token expires in {1:0} min (konsole.oauth.refresh-threshold = {2:0} min): refreshing it",
            Id, Math.Max(0, left.TotalMinutes), _settings.OAuth.RefreshThreshold.TotalMinutes);
        RequestRefresh();
    }

    private void OnRateLimit(RateLimitInfo info)
    {
        if (_rateLimitedUntil is not null && RateLimitedFor() is null)
        {
            // Its hold is over and its reset not handled yet: a warning's reset timer would replace that one, and the hold
            // would show until the warning's window ends (days, for a weekly one).
            _log.Info("Account {0}: its rate limit has reset", Id);
            _rateLimitedUntil = null;
        }
        var held = RateLimitedFor() is not null;
        // While a rejection holds, another process's report of a request sent before it ("allowed") must not hide when it
        // resets; another rejection (a prompt already in flight there) is the hold already announced: only its end may move.
        if (held && !(info is { Status: "rejected", ResetsAt: { } later } && later > _rateLimitedUntil))
            return;
        var wasStrained = IsStrained(_rateLimit);
        _rateLimit = info;
        if (info.Status == "rejected")
        {
            var until = info.ResetsAt ?? DateTimeOffset.UtcNow.AddMinutes(5);
            _rateLimitedUntil = until;
            ResetRateLimitAt(until);
            _log.Warning(held ? "Account {0}: still rate-limited, now until {1:u}"
                : "Account {0}: rate-limited until {1:u}; its role's traffic goes to a healthy account meanwhile", Id, until);
        }
        else if (info is { Status: "allowed_warning", ResetsAt: { } resets })
        {
            // The warning is about a window that ends: after it, it keeps no traffic away (until a turn reports the next).
            ResetRateLimitAt(resets);
        }
        // Announced when the account becomes limited or strained, not again for each turn that reports the same.
        if ((info.Status == "rejected" && !held) || (IsStrained(info) && !wasStrained))
            Context.System.EventStream.Publish(new AccountRateLimited(Id, info.Status ?? "unknown", info.ResetsAt, info.Utilization));
        PublishStatus(); // the router hears of it before the prompts handed back to it
        // Held already, they were handed on as it began; draining, they wait here for the restart (see PostStop).
        if (held || RateLimitedFor() is null || _draining)
            return;
        foreach (var slot in _slots)
            HandOnWaiting(slot);
        StartRefreshIfIdle();
        PublishStatus();
    }

    private bool IsStrained(RateLimitInfo? info) =>
        info is { Status: "allowed_warning" } && info.Utilization >= _settings.RateLimitWarningUtilization;

    private void ResetRateLimitAt(DateTimeOffset at)
    {
        // A reset time already past (the API's clock ahead of the host's) ends the hold at once instead of a negative delay.
        var left = at - DateTimeOffset.UtcNow;
        Timers.StartSingleTimer(nameof(RateLimitReset), RateLimitReset.Instance, left > TimeSpan.Zero ? left : TimeSpan.Zero);
    }

    /// <summary>
    /// While the account is rate-limited, the slot's prompts that have not reached its CLI are handed on (see <see cref="HandOn"/>),
    /// in order: one waiting for its session's confirmation or for its process to restart on its conversation, then the queued
    /// ones, but for those following a turn still to end here (<see cref="FollowsOneStillHere"/>).
    /// </summary>
    private void HandOnWaiting(Slot slot)
    {
        if (slot is { Running: { } waiting, Dispatched: false })
        {
            Timers.Cancel($"{slot.Name}-confirm");
            slot.Confirming = null;
            slot.Running = null;
            HandOn(waiting, slot.Mode, slot);
        }
        var kept = false;
        for (var node = slot.Queue.First; node is not null;)
        {
            var next = node.Next;
            if (FollowsOneStillHere(slot, node.Value))
                kept = true;
            else
            {
                slot.Queue.Remove(node);
                HandOn(node.Value, slot.Mode, slot);
            }
            node = next;
        }
        if (kept)
            AnnouncePositions(slot);
    }

    /// <summary>
    /// A full prompt its session sent after one still to end here (running, or kept queued ahead of it) waits for it: handed
    /// on, it would run elsewhere beside it, on a conversation without that turn. Once that turn ends, it goes on, continuing it.
    /// </summary>
    private static bool FollowsOneStillHere(Slot slot, Prompt prompt) =>
        slot.Mode == ProcessMode.Full && prompt.After is { } after
        && (slot.Running?.PromptId == after || slot.Queue.Any(q => q.PromptId == after));

    /// <summary>A prompt following its session's last turn here (sent before its session heard of it) continues that turn's conversation wherever it goes.</summary>
    private Prompt OnItsConversation(Prompt prompt) => LeftFor(prompt) is { } left ? prompt with { Conversation = left } : prompt;

    /// <summary>The conversation the turn <paramref name="prompt"/> was sent after left here; null: none known.</summary>
    private ConversationRef? LeftFor(Prompt prompt) =>
        prompt.After is { } after && _lastTurns.TryGetValue(prompt.UserSessionId, out var last) && last.PromptId == after ? last.Conversation : null;

    /// <summary>How long the account stays rate-limited; null when it is not.</summary>
    private TimeSpan? RateLimitedFor() =>
        _rateLimitedUntil is { } until && until > DateTimeOffset.UtcNow ? until - DateTimeOffset.UtcNow : null;

    /// <summary>
    /// A prompt that has not started while the account is rate-limited: a role's goes back to the router, which sends it to
    /// a healthy account (or fails it with account_unavailable); a worker's, whose session stays on this account, fails at
    /// once with account_unavailable and the wait until the limit resets.
    /// </summary>
    private void HandOn(Prompt prompt, ProcessMode mode, Slot? from)
    {
        if (mode == ProcessMode.Worker)
            prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable,
                $"account {Id}, where this worker session runs, is rate-limited until {_rateLimitedUntil:u}", RateLimitedFor()));
        else
            Context.Parent.Tell(new PromptHandedBack(from is null ? prompt : OnItsConversation(prompt), mode, Id));
    }

    private Slot? ConfirmingSlot(string promptId) =>
        _slots.FirstOrDefault(s => s.Confirming == promptId && s.Running?.PromptId == promptId && !s.Dispatched);

    /// <summary>Gives up the slot's prompt before it reached the CLI, and starts the next one.</summary>
    private void Drop(Slot slot, TurnFailed? reply)
    {
        if (reply is not null)
            slot.Running!.ReplyTo.Tell(reply);
        Timers.Cancel($"{slot.Name}-confirm");
        slot.Confirming = null;
        slot.Running = null;
        StartRefreshIfIdle();
        Dispatch(slot);
        if (slot.Mode == ProcessMode.Worker)
            StartWaitingWorkers();
        PublishStatus();
    }

    private void StartRefreshIfIdle()
    {
        // Not once the host stops: the refresh token could be spent with the new one not yet on disk as the host exits.
        if (_refresh != RefreshState.Pending || _slots.Any(s => s.Running is not null) || _draining)
            return;
        _log.Info("Account {0}: refreshing its OAuth token", Id);
        var (endpoint, configDir) = (_settings.OAuth.TokenEndpoint, _account.ConfigDir);
        // On the pool: it opens the credentials file before its first await, which is not for the actor's thread (see ReadCredentials).
        var refresh = Task.Run(() => OAuthRefresher.RefreshAsync(TokenClient, endpoint, configDir, TimeProvider.System, CancellationToken.None));
        RefreshesInFlight[_account.ConfigDir] = refresh;
        AwaitRefresh(refresh);
        PublishStatus();
    }

    private void AwaitRefresh(Task<OAuthRefreshed> refresh)
    {
        _refresh = RefreshState.Running;
        var incarnation = _incarnation;
        refresh.PipeTo(Self, success: r => new RefreshFinished(r, null, incarnation), failure: e => new RefreshFinished(null, e, incarnation));
    }

    private void OnRefreshFinished(RefreshFinished finished)
    {
        if (finished.Incarnation != _incarnation)
            return; // sent to the instance before a restart: this one took the refresh over (see PreStart), and hears of it itself
        RefreshesInFlight.TryRemove(_account.ConfigDir, out _);
        _refresh = RefreshState.None;
        _staleCredentialsReads = _credentialsReads;
        if (finished.Refreshed is { } refreshed)
        {
            if (refreshed.LifetimeAssumed)
                _log.Warning("Account {0}: OAuth token refreshed; the token endpoint did not say for how long: taken to expire at {1:u} ({2:0} min)",
                    Id, refreshed.ExpiresAt, OAuthRefresher.AssumedLifetime.TotalMinutes);
            else
                _log.Info("Account {0}: OAuth token refreshed; it expires at {1:u}", Id, refreshed.ExpiresAt);
            _refreshedTo = refreshed.ExpiresAt;
            _refreshedLife = refreshed.ExpiresAt - DateTimeOffset.UtcNow;
            _oauthError = null;
            _refreshFailures = 0;
            _refreshRefusedFor = null;
            Context.System.EventStream.Publish(new OAuthTokenRefreshed(Id, refreshed.ExpiresAt));
            ReadCredentials();
        }
        else
        {
            var error = finished.Error is OAuthRefreshException e ? e : null;
            var retryable = error?.Retryable ?? true;
            _oauthError = error?.Message ?? $"the refresh failed unexpectedly ({finished.Error?.GetType().Name})";
            if (retryable)
            {
                var delay = _settings.OAuth.RetryDelay(++_refreshFailures, Random.Shared.NextDouble());
                _log.Warning("Account {0}: OAuth refresh failed: {1}; retrying in {2:0}s", Id, _oauthError, delay.TotalSeconds);
                Timers.StartSingleTimer(nameof(RetryRefresh), RetryRefresh.Instance, delay);
            }
            else
            {
                _refreshRefusedFor = _credentials?.ExpiresAt;
                _log.Error("Account {0}: OAuth refresh failed: {1}; it needs a new login (claude login with CLAUDE_CONFIG_DIR={2})",
                    Id, _oauthError, _account.ConfigDir);
            }
            Context.System.EventStream.Publish(new OAuthRefreshFailed(Id, _oauthError, retryable));
        }
        foreach (var slot in _slots.ToList())
            Dispatch(slot);
        PublishStatus();
    }

    /// <summary>Starts the next queued prompt of <paramref name="slot"/>, deciding which conversation it needs.</summary>
    private void Dispatch(Slot slot)
    {
        if (!slot.CanDispatch || _refresh != RefreshState.None || _draining)
            return;
        if (RateLimitedFor() is not null)
        {
            HandOnWaiting(slot); // queued again after a crash while the limit holds
            PublishStatus();
            return;
        }
        var prompt = slot.Queue.First!.Value;
        slot.Queue.RemoveFirst();
        slot.Running = prompt;
        AnnouncePositions(slot);
        if (prompt.ConfirmDispatch)
        {
            slot.Confirming = prompt.PromptId;
            prompt.ReplyTo.Tell(new DispatchRequested(prompt.PromptId, Id));
            Timers.StartSingleTimer($"{slot.Name}-confirm", new ConfirmationOverdue(slot.Name, prompt.PromptId), ConfirmationTimeout);
            PublishStatus();
            return;
        }
        Begin(slot);
    }

    /// <summary>Hands the slot's prompt to its process, on the conversation it needs.</summary>
    private void Begin(Slot slot)
    {
        if (PutBackIfDrained(slot))
            return;
        var prompt = slot.Running!;
        if (slot.Mode == ProcessMode.Chat)
        {
            Send(slot, clearFirst: false);
            return;
        }
        // A conversation the turn it follows left here is newer than the one it carries (which may name where the conversation was
        // before, e.g. on another account before a swap); another session's turn may have run here since.
        if ((LeftFor(prompt) ?? prompt.Conversation) is { } wanted)
        {
            if (wanted == slot.Held)
                Send(slot, clearFirst: false);
            else
                Switch(slot, wanted);
            return;
        }
        // A new conversation, or a follow-up queued before this session's first turn reported its conversation.
        var followUp = slot.Held is not null && slot.HeldUserSession == prompt.UserSessionId;
        Send(slot, clearFirst: slot.Held is not null && !followUp);
    }

    /// <summary>
    /// Past the drain deadline no turn starts (the host stops, and it would run on uninterrupted): the slot's prompt, confirmed by
    /// its session or waiting for its process to restart on its conversation, goes back to the queue, and its caller is told it
    /// does not start, as those queued when the drain began were.
    /// </summary>
    private bool PutBackIfDrained(Slot slot)
    {
        if (!_drainExpired)
            return false;
        var prompt = slot.Running!;
        slot.Queue.AddFirst(prompt);
        slot.Running = null;
        prompt.ReplyTo.Tell(new PromptNotStarted(prompt.PromptId));
        PublishStatus();
        return true;
    }

    private void Send(Slot slot, bool clearFirst)
    {
        if (clearFirst)
        {
            slot.Held = null;
            slot.HeldUserSession = null;
        }
        slot.Dispatched = true;
        slot.Process!.Tell(new RunTurn(slot.Running!, clearFirst));
        PublishStatus();
    }

    private void Switch(Slot slot, ConversationRef wanted)
    {
        _log.Info("Account {0}: moving its full process to conversation {1} (from account {2}) for session {3}",
            Id, wanted.SessionId, wanted.AccountId, slot.Running!.UserSessionId);
        slot.Dispatched = false;
        PrepareConversation(slot, slot.Running.PromptId, wanted.SessionId, wanted.ConfigDir);
        PublishStatus();
    }

    private void PrepareConversation(Slot slot, string? forPromptId, string sessionId, string fromConfigDir)
    {
        var (to, incarnation, name) = (_account.ConfigDir, _incarnation, slot.Name);
        Task.Run(() => Transcripts.Prepare(sessionId, fromConfigDir, to)).PipeTo(Self,
            success: available => new ConversationPrepared(name, forPromptId, sessionId, available, null, incarnation),
            failure: e => new ConversationPrepared(name, forPromptId, sessionId, false, e.Message, incarnation));
    }

    private void OnConversationPrepared(Slot slot, ConversationPrepared prepared)
    {
        if (!prepared.Available)
            _log.Warning("Account {0}: no transcript of conversation {1} found{2}; it continues as a new conversation",
                Id, prepared.SessionId, prepared.Error is null ? "" : $" ({prepared.Error})");
        if (prepared.Available && prepared.SessionId == slot.ResumeRefused)
            _log.Warning("Account {0}: its CLI would not resume conversation {1}; it continues as a new conversation", Id, prepared.SessionId);
        var resume = prepared.Available && prepared.SessionId != slot.ResumeRefused ? prepared.SessionId : null;

        if (prepared.ForPromptId is null)
        {
            // A restart after a crash.
            if (slot.Restarting && slot.Process is null)
                StartProcess(slot, resume);
            return;
        }
        if (slot.Running?.PromptId != prepared.ForPromptId || slot.Dispatched || slot.Confirming is not null || slot.Process is null)
        {
            Dispatch(slot); // the prompt was interrupted (or its process crashed, and it waits for its session's confirmation again) meanwhile
            return;
        }
        StopProcess(slot);
        var userSession = slot.Running.UserSessionId;
        StartProcess(slot, resume);
        slot.HeldUserSession = userSession;
    }

    private void OnReady(Slot slot, int processId)
    {
        slot.ProcessId = processId;
        slot.ResumeFailed = null;
        slot.LostBeforeReady = 0;
        if (slot.Restarting)
        {
            slot.Restarting = false;
            _log.Info("Account {0}: {1} process is back (pid {2})", Id, slot.Name, processId);
        }
        if (slot is { Running: not null, Dispatched: false })
        {
            if (!PutBackIfDrained(slot))
                Send(slot, clearFirst: false); // it was started on this prompt's conversation
        }
        else
            Dispatch(slot);
        if (slot.Mode == ProcessMode.Worker)
            StartWaitingWorkers(); // back from a restart, and idle
        PublishStatus();
    }

    private void OnTurnFinished(Slot slot, TurnFinished finished)
    {
        if (slot.Running?.PromptId != finished.PromptId)
            return;
        if (slot.Mode != ProcessMode.Chat && finished.SessionId is not null)
        {
            slot.Held = new ConversationRef(finished.SessionId, Id, _account.ConfigDir);
            slot.HeldUserSession = slot.Running.UserSessionId;
            _lastTurns.Set(slot.HeldUserSession, (finished.PromptId, slot.Held));
        }
        slot.Running = null;
        slot.Dispatched = false;
        slot.ConsecutiveCrashes = 0;
        slot.LastUse = ++_uses;
        if (!_account.UsesApiKey)
            ReadCredentials(); // the CLI may have refreshed the token itself
        StartRefreshIfIdle();
        Dispatch(slot);
        if (slot.Mode == ProcessMode.Worker)
            StartWaitingWorkers();
        PublishStatus();
    }

    private void OnProcessLost(Slot slot, string? sessionId, string reason, string? turnReported, string? sentTurn)
    {
        var neverReady = slot.ProcessId is null;
        if (neverReady)
            slot.LostBeforeReady++;
        Context.Unwatch(slot.Process);
        slot.Process = null;
        slot.ProcessId = null;
        if (slot.Mode != ProcessMode.Chat && sessionId is not null)
            slot.Held = new ConversationRef(sessionId, Id, _account.ConfigDir);
        if (neverReady && slot.Held is { } resuming)
        {
            // Lost twice in a row starting on one conversation: its CLI will not resume it (say, "No conversation found"), and
            // starting on it again would only spin until the account fails. Without it the process, and its prompts, go on.
            if (slot.ResumeFailed == resuming.SessionId)
            {
                _log.Warning("Account {0}: its {1} process was lost twice starting on conversation {2}; it starts without it", Id, slot.Name, resuming.SessionId);
                slot.ResumeRefused = resuming.SessionId;
                slot.Held = null;
                slot.HeldUserSession = null;
            }
            slot.ResumeFailed = resuming.SessionId;
        }
        if (slot.Running is { } running)
        {
            // Not written to the CLI: a /clear or set_model before it failed, or the process never got it.
            var unsent = slot.Dispatched && sentTurn != running.PromptId && turnReported is null;
            if (slot.InterruptAsked == running.PromptId && (unsent || !slot.Dispatched))
            {
                // Its interrupt reached the process after it was lost, and nobody answered it; it never ran: it ends here, as
                // asked, not later, and not as a crash.
                running.ReplyTo.Tell(new TurnFailed(running.PromptId, TurnErrorCodes.Interrupted, "interrupted before it started"));
            }
            else if (slot.Dispatched && !(unsent && slot.UnsentOnce != running.PromptId))
            {
                if (turnReported != running.PromptId)
                    running.ReplyTo.Tell(new TurnFailed(running.PromptId, TurnErrorCodes.ProcessCrashed, unsent
                        ? $"account {Id}: the prompt never reached the CLI: its {slot.Name} process was lost twice before sending it: {reason}"
                        : $"account {Id}: the {slot.Name} process crashed during the turn: {reason}"));
                // A turn that ran left its conversation to its session; one that never reached the CLI left it nothing (what the
                // process holds may be another session's, resumed after the first loss).
                if (!unsent)
                    slot.HeldUserSession = running.UserSessionId;
            }
            else
            {
                // It had not reached the CLI: it waits for the restart, and is confirmed again then. Once when its process was
                // lost before sending it: lost that way again, it may be what breaks the process, and fails as a crash would.
                if (unsent)
                    slot.UnsentOnce = running.PromptId;
                slot.Queue.AddFirst(running);
                if (_draining)
                    running.ReplyTo.Tell(new PromptNotStarted(running.PromptId)); // as those queued when the drain began
                slot.Confirming = null;
                Timers.Cancel($"{slot.Name}-confirm");
            }
            slot.Running = null;
            slot.Dispatched = false;
        }

        if (CoordinatedShutdown.Get(Context.System).ShutdownReason is not null)
            return; // the system is ending: its processes are being stopped, not lost
        StartRefreshIfIdle();

        var now = DateTimeOffset.UtcNow;
        slot.RecentRestarts.Enqueue(now);
        while (slot.RecentRestarts.Peek() < now - _settings.Claude.Restart.Window)
            slot.RecentRestarts.Dequeue();
        if (slot.RecentRestarts.Count > _settings.Claude.Restart.MaxRestarts)
        {
            FailAccount($"its {slot.Name} process was lost {slot.RecentRestarts.Count} times within " +
                $"{_settings.Claude.Restart.Window.TotalMinutes:0.#} min (konsole.claude.restart.max-restarts = {_settings.Claude.Restart.MaxRestarts}); last: {reason}");
            return;
        }
        // A CLI that hangs as it boots is lost once per start-timeout, too slowly for the window to fill: it would restart for ever.
        if (slot.LostBeforeReady > _settings.Claude.Restart.MaxRestarts)
        {
            FailAccount($"its {slot.Name} process was lost {slot.LostBeforeReady} times in a row before it was ready " +
                $"(konsole.claude.restart.max-restarts = {_settings.Claude.Restart.MaxRestarts}); last: {reason}");
            return;
        }

        slot.ConsecutiveCrashes++;
        slot.Restarts++;
        slot.Restarting = true;
        var delay = _settings.Claude.Restart.Delay(slot.ConsecutiveCrashes, Random.Shared.NextDouble());
        _log.Warning("Account {0}: {1} process lost ({2}); restart {3} in {4:0.###}s",
            Id, slot.Name, reason, slot.ConsecutiveCrashes, delay.TotalSeconds);
        Timers.StartSingleTimer(slot.Name, new RestartProcess(slot.Name), delay);
        Context.System.EventStream.Publish(new ProcessRestarted(Id, slot.Mode, slot.ConsecutiveCrashes, delay, reason));
        AnnouncePositions(slot);
        if (slot.Mode == ProcessMode.Worker)
            StartWaitingWorkers(); // its turn ended with it
        PublishStatus();
    }

    /// <summary>
    /// Gives up on the account: every prompt it holds, and every prompt sent to it from now on, fails with
    /// <c>account_unavailable</c>; its processes stop. It stays failed until the host restarts.
    /// </summary>
    private void FailAccount(string reason)
    {
        _failure = reason;
        _log.Error("Account {0} failed: {1}", Id, reason);
        foreach (var slot in _slots)
        {
            Timers.Cancel(slot.Name);
            slot.Restarting = false;
            StopProcess(slot);
            foreach (var prompt in slot.Queue.Append(slot.Running).OfType<Prompt>())
                prompt.ReplyTo.Tell(new TurnFailed(prompt.PromptId, TurnErrorCodes.AccountUnavailable, $"account {Id} failed: {reason}"));
            slot.Queue.Clear();
            slot.Running = null;
            slot.Dispatched = false;
        }
        PublishStatus();
    }

    private void OnRestart(Slot slot)
    {
        if (slot.Process is not null)
            return;
        if (slot.Held is { } held)
            PrepareConversation(slot, null, held.SessionId, _account.ConfigDir);
        else
            StartProcess(slot, resume: null);
    }

    private void StartProcess(Slot slot, string? resume)
    {
        slot.Generation++;
        var spec = new HotProcessSpec(Id, slot.Mode, _account.ConfigDir,
            CliLaunch.For(_settings, _account, slot.Mode), resume,
            _settings.Claude);
        slot.Process = Context.Watch(Context.ActorOf(_processProps(spec), $"{slot.Name}-{slot.Generation}"));
        slot.Started = true;
        slot.LastUse = ++_uses;
        slot.ProcessId = null;
        slot.Held = resume is null ? null : new ConversationRef(resume, Id, _account.ConfigDir);
        if (resume is null)
            slot.HeldUserSession = null;
    }

    private void StopProcess(Slot slot)
    {
        if (slot.Process is null) return;
        Context.Unwatch(slot.Process);
        Context.Stop(slot.Process); // its PostStop stops the CLI gracefully
        slot.Process = null;
        slot.ProcessId = null;
    }

    private void AnnouncePositions(Slot slot)
    {
        var position = 0;
        foreach (var prompt in slot.Queue)
            prompt.ReplyTo.Tell(new PromptQueued(prompt.PromptId, Id, ++position));
    }

    private void ReadCredentials()
    {
        var (read, incarnation) = (++_credentialsReads, _incarnation);
        var configDir = _account.ConfigDir;
        // Read after every turn (and at start, on the poll, after a refresh): the file is not opened on the actor's thread, and
        // the read waits in the pool's shared queue (PreferFairness) instead of going ahead of the turn's result on this
        // thread's own.
        Task.Factory.StartNew(() => AccountCredentials.ReadAsync(configDir), CancellationToken.None,
                TaskCreationOptions.PreferFairness | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default)
            .Unwrap()
            .PipeTo(Self, success: c => new CredentialsRead(c, read, incarnation));
    }

    private AccountStatus Status() => new(
        Id,
        _account.Label,
        _account.Tier ?? _credentials?.RateLimitTier,
        _state,
        _slots.Select(s => s.Running?.UserSessionId).FirstOrDefault(id => id is not null),
        _slots.Sum(s => s.Queue.Count),
        _account.UsesApiKey,
        _credentials?.ExpiresAt,
        _rateLimit,
        // Workers waiting for a place last, in the order they began to wait: the order the router moves them in, as places here go.
        _slots.OrderBy(s => s.WaitsForPlace ? s.LastUse : long.MinValue).Select(s => new ProcessStatus(s.Mode, s.ProcessId, s.Running is not null, s.Held?.SessionId, s.Restarts, s.WorkerSession,
            s.Running?.UserSessionId, s.WaitsForPlace, s is { Mode: ProcessMode.Worker, Started: false, WaitsForPlace: false })).ToArray(),
        _failure ?? (_rateLimitedUntil is { } until ? $"rate-limited until {until:u}" : null),
        _oauthError ?? _credentials?.Problem,
        _refresh == RefreshState.Running,
        _rateLimitedUntil);

    private void PublishStatus()
    {
        var busy = _slots.Any(s => s.Running is not null);
        var state = _failure is not null ? AccountState.Failed
            : _rateLimitedUntil is not null ? AccountState.RateLimited
            : _slots.Any(s => s.Restarting) ? AccountState.Restarting
            : _refresh == RefreshState.Running ? AccountState.Refreshing
            : busy ? AccountState.Busy
            : _slots.Any(s => s.Mode != ProcessMode.Worker && s.ProcessId is null) ? AccountState.Starting
            : AccountState.Idle;
        if (state != _state || busy != _busy)
        {
            var previous = _state;
            _state = state;
            _busy = busy;
            // Busy and idle alternate with every prompt: only the other changes are worth the log's attention.
            var routine = state is AccountState.Busy or AccountState.Idle && previous is AccountState.Busy or AccountState.Idle;
            if (state != previous)
                _log.Log(routine ? LogLevel.DebugLevel : LogLevel.InfoLevel, null, "Account {0}: {1} -> {2}", Id, previous, state);
            Context.System.EventStream.Publish(new AccountStateChanged(Id, state, previous, Status().StateReason, busy));
        }
        Context.Parent.Tell(Status());
    }

    private void WithSlot(Action<Slot> handle)
    {
        // Messages from a process this account already replaced are stale.
        if (_slots.FirstOrDefault(s => s.Process?.Equals(Sender) == true) is { } slot)
            handle(slot);
    }

    private void WithSlot(string name, Action<Slot> handle)
    {
        // A worker slot may have closed meanwhile.
        if (_slots.FirstOrDefault(s => s.Name == name) is { } slot)
            handle(slot);
    }

    private Slot SlotFor(ProcessMode mode) => _slots.First(s => s.Mode == mode);

    /// <summary>One hot process and the prompts waiting for it.</summary>
    private sealed class Slot(ProcessMode mode, string name)
    {
        public ProcessMode Mode { get; } = mode;
        public string Name { get; } = name;

        /// <summary>The worker session this slot serves (worker slots only).</summary>
        public string? WorkerSession;

        /// <summary>A process was started for it (a worker slot waits for a worker place until then, or after giving it up idle).</summary>
        public bool Started;

        public long LastUse; // when its process started or last finished a turn, or it began to wait for a place, in the account's own count

        public IActorRef? Process;
        public int? ProcessId; // set once the process answered initialize
        public int Generation;
        public readonly LinkedList<Prompt> Queue = new();

        /// <summary>The prompt that owns the process now; <see cref="Dispatched"/> once it was handed to it.</summary>
        public Prompt? Running;
        public bool Dispatched;

        /// <summary>The running prompt whose session is asked to confirm its dispatch.</summary>
        public string? Confirming;

        /// <summary>The conversation the process holds (null: an empty one), and the user session it belongs to.</summary>
        public ConversationRef? Held;
        public string? HeldUserSession;

        public bool Restarting;
        public string? InterruptAsked; // the running prompt whose interrupt was forwarded to its process
        public string? UnsentOnce; // the prompt last put back because its process was lost before it reached the CLI
        public string? ResumeFailed; // the conversation its last process was lost resuming, before it was ever ready
        public string? ResumeRefused; // a conversation its CLI would not resume (lost twice before ready): not tried again
        public int ConsecutiveCrashes;
        public int LostBeforeReady; // its processes lost in a row before they were ready
        public int Restarts;
        public readonly Queue<DateTimeOffset> RecentRestarts = new();

        public bool CanDispatch => Process is not null && ProcessId is not null && Running is null && Queue.Count > 0;

        /// <summary>A worker slot with prompts and no process (<see cref="Started"/> not yet, or no longer).</summary>
        public bool WaitsForPlace => Mode == ProcessMode.Worker && !Started && Queue.Count > 0;
    }

    private sealed record ConfirmationOverdue(string Slot, string PromptId);

    private sealed record RetryRefresh
    {
        public static readonly RetryRefresh Instance = new();
    }

    private sealed record RateLimitReset
    {
        public static readonly RateLimitReset Instance = new();
    }

    private sealed record DrainExpired
    {
        public static readonly DrainExpired Instance = new();
    }

    private enum RefreshState
    {
        None,
        Pending,
        Running,
    }

    private sealed record RefreshFinished(OAuthRefreshed? Refreshed, Exception? Error, Guid Incarnation);

    private sealed record RestartProcess(string Slot);

    private sealed record ConversationPrepared(string Slot, string? ForPromptId, string SessionId, bool Available, string? Error, Guid Incarnation);

    private sealed record CredentialsRead(AccountCredentials Credentials, long Read, Guid Incarnation);

    private sealed record PollCredentials
    {
        public static readonly PollCredentials Instance = new();
    }
}
