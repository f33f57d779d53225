using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Event;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using static Konsole.Actors.Sessions.SessionProtocol;
using static Konsole.Actors.Sessions.SessionRegistryProtocol;

namespace Konsole.Actors.Sessions;

/// <summary>
/// Creates, finds and closes sessions, one <see cref="SessionActor"/> each, and forwards each session's messages
/// to it (the session answers the asker directly). A closed session's id stays known, so a prompt to it is told
/// the session was closed rather than that it never existed. Opened and closed sessions are journaled by its
/// <see cref="SessionRegistry"/> (after a restart every open session is back, recovering its own state; messages wait
/// until the registry is read back) and published on the event stream (quick turns' one-prompt sessions aside). A
/// registry write that fails stops no session: sessions being opened are refused as unavailable, and the registry
/// starts again and catches up with what the manager holds.
/// </summary>
public sealed partial class SessionManager : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    private static readonly TimeSpan RestartMinBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan RestartMaxBackoff = TimeSpan.FromSeconds(30);

    private readonly IActorRef _router;
    private readonly SessionSettings _settings;
    private readonly Dictionary<string, Registered> _sessions = new(StringComparer.Ordinal);
    private readonly RecentIds _closed = new(SessionRegistry.ClosedIdsKept);
    private readonly HashSet<string> _restarting = new(StringComparer.Ordinal); // stopped on a fault, starting again
    private readonly Dictionary<string, FaultBackoff> _failures = new(StringComparer.Ordinal); // recent faults, for the backoff
    // Of sessions stopped on a fault, until closed: a restart that cannot read its journal back (the database still down) stops
    // before writing ids above them, and the next must still start above them.
    private readonly Dictionary<string, long> _lastEventIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Opening> _opening = new(StringComparer.Ordinal); // waiting for the registry to record them
    // Likewise; Session null: it stopped on a fault before its close was on record.
    private readonly Dictionary<string, (IActorRef? Session, CloseSession Close, IActorRef Asker)> _closing = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, (string Id, IActorRef Asker)> _closeSent = new(); // closes on record, until their session answers
    private readonly FaultBackoff _registryBackoff = new(RestartMinBackoff, RestartMaxBackoff);
    private readonly ReplayBudget _replay;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef? _registry; // null while it starts again after a failed write
    private bool _registryFailed; // from a registry's stop until one started again has read the journal back

    public SessionManager(IActorRef router, SessionSettings settings)
    {
        _router = router;
        _settings = settings;
        _replay = new ReplayBudget(settings.ReplayTotalBytes);

        Receive<RegistryRecovered>(m =>
        {
            _registryFailed = false; // a registry before this one failed to read the journal back
            foreach (var id in m.Closed)
                _closed.Add(id);
            foreach (var open in m.Open)
                _sessions[open.SessionId] = new Registered(null, open.Type, open.Model);
            foreach (var (id, session) in _sessions.ToList())
                _sessions[id] = session with { Actor = Start(id, session) };
            Stash.UnstashAll();
            Context.System.EventStream.Subscribe(Self, typeof(DeadLetter)); // see Serving: commands that reached a session as it stopped
            Become(Serving);
        });
        // A registry that cannot read the sessions back (after a restart of this actor) is tried again; all else waits for it.
        RestartingTheRegistry();
        Receive<GetReadiness>(_ => Sender.Tell(new Readiness("the sessions are being read back from the journal")));
        ReceiveAny(_ => Stash.Stash());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public IStash Stash { get; set; } = null!;

    public static Props Props(IActorRef router, SessionSettings settings) =>
        Akka.Actor.Props.Create(() => new SessionManager(router, settings));

    /// <summary>Session ids: letters, digits and <c>- _ . :</c>, up to 128 characters.</summary>
    public static bool IsValidId(string id) => ValidId().IsMatch(id);

    // A session actor that fails is stopped, never restarted in place with state its journal may not have; it starts
    // again from its journal (see Terminated). So is the registry.
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    private void Serving()
    {
        Receive<CreateSession>(m =>
        {
            var id = m.SessionId ?? NewId(m.Type);
            if (Refusal(id, creating: true) is { } refused)
                Sender.Tell(refused);
            else
                Open(id, new Registered(null, m.Type, m.Model), m);
        });
        Receive<SubmitPrompt>(m =>
        {
            var known = _sessions.GetValueOrDefault(m.SessionId);
            if (known is null && QuickTurn(m.SessionId) is not null)
                Sender.Tell(new SessionRejected(SessionErrorCodes.TypeMismatch, $"session {m.SessionId} is a quick turn's: it takes no other prompt"));
            else if (known is null && m.CreateAs is { } type)
            {
                if (Refusal(m.SessionId, creating: true) is { } refused)
                    Sender.Tell(refused);
                else
                    Open(m.SessionId, new Registered(null, type, null), m);
            }
            else if (known is not null && m.CreateAs is { } wanted && known.Type != wanted)
                Sender.Tell(new SessionRejected(SessionErrorCodes.TypeMismatch,
                    $"session {m.SessionId} is a {known.Type.ToString().ToLowerInvariant()} session, not a {wanted.ToString().ToLowerInvariant()} one"));
            else
                ForwardTo(m.SessionId, m);
        });
        Receive<SubmitQuickTurn>(m =>
        {
            var id = NewId(SessionType.Chat);
            Context.ActorOf(SessionActor.Props(id, SessionType.Chat, _router, _settings.ReplayBuffer, _settings.ReplayBufferBytes, durable: false), QuickTurnName(id)).Forward(m);
        });
        Receive<FollowEvents>(m => ForwardTo(m.SessionId, m));
        Receive<Unfollow>(m =>
        {
            if (_sessions.TryGetValue(m.SessionId, out var session))
                session.Actor?.Tell(m);
            else
                QuickTurn(m.SessionId)?.Tell(m); // a quick turn's client that left: its output must not pile up until the turn ends
        });
        Receive<InterruptSession>(m => ForwardTo(m.SessionId, m));
        Receive<GetSession>(m => ForwardTo(m.SessionId, m));
        Receive<GetReadiness>(_ => Sender.Tell(_registryFailed
            ? new Readiness("the session registry's journal failed: until a registry has read it back, new sessions are refused or wait")
            : Readiness.Ready));
        Receive<CloseSession>(m =>
        {
            if (!_sessions.TryGetValue(m.SessionId, out var session))
            {
                ForwardTo(m.SessionId, m); // a quick turn's closes at once (it journals nothing); any other is refused
                return;
            }
            if (session.Actor is null || _restarting.Contains(m.SessionId))
            {
                Sender.Tell(Unavailable(m.SessionId));
                return;
            }
            _sessions.Remove(m.SessionId);
            _failures.Remove(m.SessionId);
            _lastEventIds.Remove(m.SessionId);
            _replay.Forget(m.SessionId);
            // Closed from now on: what comes for it next is refused here, not lost on a stopping actor.
            _closed.Add(m.SessionId);
            Context.System.EventStream.Publish(new SessionEnded(m.SessionId, session.Type));
            // The session closes (deleting its journal) and answers once its close is on record: a host killed before that finds
            // it open after its restart, conversation and all, and one killed after the answer finds it closed. Without a
            // registry the close waits for the next one (CatchUp).
            _closing[m.SessionId] = (session.Actor!, m, Sender);
            _registry?.Tell(new RecordClosed(m.SessionId));
        });
        Receive<CloseRecorded>(m => CloseOnRecord(m.SessionId));
        Receive<SessionRecorded>(m =>
        {
            if (!_opening.Remove(m.SessionId, out var opening) || !_sessions.TryGetValue(m.SessionId, out var session))
                return;
            var actor = Start(m.SessionId, session);
            _sessions[m.SessionId] = session with { Actor = actor };
            Context.System.EventStream.Publish(new SessionOpened(new SessionInfo(m.SessionId, session.Type, null, "idle", null, 0, 0, session.Model)));
            actor.Tell(opening.First is CreateSession ? new GetSession(m.SessionId) : opening.First, opening.Asker);
            foreach (var (message, sender) in opening.Waiting)
                actor.Tell(message, sender);
        });
        Receive<RegistryRecovered>(CatchUp);
        RestartingTheRegistry();
        Receive<SessionClosed>(m =>
        {
            if (_closeSent.Remove(Sender, out var sent))
                sent.Asker.Tell(m);
        });
        Receive<Terminated>(m =>
        {
            if (ClosingStopped(m.ActorRef))
                return;
            var (id, stopped) = _sessions.FirstOrDefault(s => m.ActorRef.Equals(s.Value.Actor));
            if (id is null)
                return;
            // It stopped on a fault (its journal failed, or a bug): still open, it starts again from its journal (its buffer empty).
            _sessions[id] = stopped with { Actor = null };
            _replay.Forget(id);
            _restarting.Add(id);
            if (!_failures.TryGetValue(id, out var faults))
                _failures[id] = faults = new FaultBackoff(RestartMinBackoff, RestartMaxBackoff);
            var backoff = faults.Next();
            _log.Warning("Session {0} stopped on a fault; it starts again from its journal in {1:0.0}s", id, backoff.TotalSeconds);
            // Keyed by the message, not the id: a session's id is a client's to choose, and one named as another timer would replace it.
            var restart = new RestartSession(id);
            Timers.StartSingleTimer(restart, restart, backoff);
        });
        Receive<SessionFaulted>(m =>
        {
            if (!_sessions.TryGetValue(m.SessionId, out var session))
                return;
            _lastEventIds[m.SessionId] = Math.Max(_lastEventIds.GetValueOrDefault(m.SessionId), m.LastEventId);
            if (Sender.Equals(session.Actor))
                _restarting.Add(m.SessionId); // until it is back: see Terminated
        });
        // A command that reached a session as it stopped (in its mailbox, or stashed by Akka.Persistence while a journal write
        // that then failed was on its way) is handled as one sent now: handed to the session started again, or refused as
        // unavailable while it starts. Lost, its asker would wait for its timeout.
        Receive<DeadLetter>(m => m.Recipient.Path.Parent.Equals(Self.Path) && m.Sender is { } sender && !sender.IsNobody() && !sender.Equals(Self)
            && SessionOf(m.Message) is not null,
            m => ForwardTo(SessionOf(m.Message)!, m.Message, m.Sender, deadRecipient: m.Recipient));
        Receive<ReplayHeld>(m =>
        {
            if (!_sessions.TryGetValue(m.SessionId, out var session) || !Sender.Equals(session.Actor))
                return; // closed, or stopped on a fault since
            foreach (var id in _replay.Held(m.SessionId, m.Bytes, m.Running))
            {
                if (_sessions.TryGetValue(id, out var other))
                    other.Actor?.Tell(GiveUpReplay.Instance);
            }
        });
        Receive<RestartSession>(m =>
        {
            if (_sessions.TryGetValue(m.SessionId, out var session) && _restarting.Remove(m.SessionId))
                _sessions[m.SessionId] = session with
                {
                    Actor = Start(m.SessionId, session, _lastEventIds.GetValueOrDefault(m.SessionId)),
                };
        });
    }

    /// <summary>Journals the new session, then starts it and hands it <paramref name="first"/> (its creation or first prompt).</summary>
    private void Open(string id, Registered session, object first)
    {
        if (_registry is null)
        {
            Sender.Tell(new SessionRejected(SessionErrorCodes.Unavailable,
                "the session registry's journal failed a write and is starting again; try again in a moment"));
            return;
        }
        _sessions[id] = session; // taken at once: a second create of the same id waits for nothing
        _opening[id] = new Opening(first, Sender, []);
        _registry.Tell(new RecordOpened(new SessionRegistered(id, session.Type, session.Model)));
    }

    protected override void PreStart() => _registry = StartRegistry(firstStart: true);

    // Started again after a fault: a journal it cannot read back then must not stop the host (only at the host's start).
    protected override void PostRestart(Exception reason) => _registry = StartRegistry(firstStart: false);

    private IActorRef StartRegistry(bool firstStart) =>
        Context.Watch(Context.ActorOf(SessionRegistry.Props(firstStart), "registry"));

    /// <summary>In every behaviour: a registry that stopped (a failed write, or a read back that failed) starts again after a backoff.</summary>
    private void RestartingTheRegistry()
    {
        Receive<Terminated>(m => m.ActorRef.Equals(_registry), _ => RegistryStopped());
        Receive<RestartRegistry>(_ => _registry = StartRegistry(firstStart: false));
    }

    /// <summary>
    /// Sessions being opened are refused (their record may or may not have landed), sessions being closed wait for the next
    /// registry to record it, and the registry starts again.
    /// </summary>
    private void RegistryStopped()
    {
        _registry = null;
        _registryFailed = true;
        foreach (var (id, opening) in _opening)
        {
            _sessions.Remove(id);
            var refused = new SessionRejected(SessionErrorCodes.Unavailable,
                $"session {id} could not be recorded (the session registry's journal failed a write); try again in a moment");
            opening.Asker.Tell(refused);
            foreach (var (_, sender) in opening.Waiting)
                sender.Tell(refused);
        }
        _opening.Clear();
        var backoff = _registryBackoff.Next();
        _log.Warning("The session registry stopped (a journal write failed, or it could not read the journal back); open sessions go on, new ones are refused for {0:0.0}s", backoff.TotalSeconds);
        Timers.StartSingleTimer(RestartRegistry.Instance, RestartRegistry.Instance, backoff);
    }

    /// <summary>
    /// A registry started again reads back what was recorded: sessions closed meanwhile are recorded as closed, and a
    /// session whose opening was refused but did land in the journal is opened after all.
    /// </summary>
    private void CatchUp(RegistryRecovered recovered)
    {
        _registryFailed = false;
        foreach (var open in recovered.Open)
        {
            if (_closed.Contains(open.SessionId))
                _registry?.Tell(new RecordClosed(open.SessionId));
            else if (!_sessions.ContainsKey(open.SessionId))
                _sessions[open.SessionId] = new Registered(Start(open.SessionId, new Registered(null, open.Type, open.Model)), open.Type, open.Model);
        }
        // A close the registry before wrote but could not confirm is on record: it completes now.
        var stillOpen = recovered.Open.Select(o => o.SessionId).ToHashSet(StringComparer.Ordinal);
        foreach (var id in _closing.Keys.Where(id => !stillOpen.Contains(id)).ToList())
            CloseOnRecord(id);
    }

    /// <summary>The close of <paramref name="id"/> is on record: the session closes, deleting its journal, and answers.</summary>
    private void CloseOnRecord(string id)
    {
        if (!_closing.Remove(id, out var closing))
            return;
        if (closing.Session is null)
        {
            CloseWithout(id, closing.Asker);
            return;
        }
        _closeSent[closing.Session] = (id, closing.Asker);
        closing.Session.Tell(closing.Close); // answered to this manager, which passes it on: one that stops unanswered did not close
    }

    /// <summary>A session that stopped on a fault as it was being closed (its close is or will be on record); false: not one.</summary>
    private bool ClosingStopped(IActorRef actor)
    {
        if (_closeSent.Remove(actor, out var sent))
        {
            CloseWithout(sent.Id, sent.Asker);
            return true;
        }
        if (_closing.FirstOrDefault(c => actor.Equals(c.Value.Session)) is not { Key: { } id } closing)
            return false;
        _closing[id] = closing.Value with { Session = null }; // closed without it once its close is on record
        return true;
    }

    /// <summary>Closes a session whose actor stopped on a fault before it closed: what it held goes; its journal rows stay.</summary>
    private void CloseWithout(string id, IActorRef asker)
    {
        _log.Warning("Session {0} stopped on a fault as it was being closed: it is closed without it (its journal rows stay)", id);
        _router.Tell(new Routing.RoleRouterProtocol.ReleaseSession(id)); // a worker's process stops, its place is freed
        asker.Tell(new SessionClosed(id));
    }

    private IActorRef Start(string id, Registered session, long idsAbove = 0) =>
        Context.Watch(Context.ActorOf(SessionActor.Props(id, session.Type, _router, _settings.ReplayBuffer, _settings.ReplayBufferBytes, model: session.Model, idsAbove: idsAbove),
            SessionName(id)));

    // A child's name never comes from a session id alone: a session called "registry" took the registry's name (and the manager
    // threw on every start, read back from the journal after a restart too).
    private static string SessionName(string id) => "session-" + Uri.EscapeDataString(id);

    private static string QuickTurnName(string id) => "quick-" + id;

    /// <summary>The session of a quick turn still running (its id is shown as the quickturn account's active session), or null.</summary>
    private IActorRef? QuickTurn(string id) => Context.Child(QuickTurnName(id)) is var quick && !quick.IsNobody() ? quick : null;

    /// <param name="asker">Who asked (default: the sender).</param>
    /// <param name="deadRecipient">The stopped actor it was sent to before: not sent there again.</param>
    private void ForwardTo(string id, object message, IActorRef? asker = null, IActorRef? deadRecipient = null)
    {
        asker ??= Sender;
        if (_opening.TryGetValue(id, out var opening))
            opening.Waiting.Add((message, asker)); // handed on once it is recorded and started
        else if (!_sessions.TryGetValue(id, out var session))
        {
            if (QuickTurn(id) is { } quick && !quick.Equals(deadRecipient))
                quick.Tell(message, asker);
            else
                asker.Tell(Refusal(id, creating: false)!);
        }
        else if (session.Actor is { } actor && !_restarting.Contains(id) && !actor.Equals(deadRecipient))
            actor.Tell(message, asker);
        else
            asker.Tell(Unavailable(id));
    }

    /// <summary>The session a command this manager hands on is for; null: not one.</summary>
    private static string? SessionOf(object message) => message switch
    {
        SubmitPrompt m => m.SessionId,
        FollowEvents m => m.SessionId,
        InterruptSession m => m.SessionId,
        GetSession m => m.SessionId,
        CloseSession m => m.SessionId,
        _ => null,
    };

    private static SessionRejected Unavailable(string id) =>
        new(SessionErrorCodes.Unavailable, $"session {id} is starting (new, or again after a fault); try again in a moment");

    /// <summary>Why <paramref name="id"/> cannot be used (null: it can).</summary>
    private SessionRejected? Refusal(string id, bool creating)
    {
        const string validIds = "a session id is 1 to 128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit";
        if (!IsValidId(id))
            // A look-up's id is unknown, as the contract answers one (404); only a new session's is refused as invalid.
            return creating ? new SessionRejected(SessionErrorCodes.InvalidId, validIds) : new SessionRejected(SessionErrorCodes.NotFound, $"no such session: {validIds}");
        if (_closed.Contains(id))
            return new SessionRejected(SessionErrorCodes.Closed, $"session {id} was closed");
        if (creating && (_sessions.ContainsKey(id) || QuickTurn(id) is not null))
            return new SessionRejected(SessionErrorCodes.Exists, $"session {id} already exists");
        if (creating && _sessions.Count >= _settings.MaxOpen)
            return new SessionRejected(SessionErrorCodes.TooMany,
                $"{_sessions.Count} sessions are open (konsole.sessions.max-open): close one (DELETE /api/session/{{id}}) to open another");
        return creating ? null : new SessionRejected(SessionErrorCodes.NotFound, $"no session {id}");
    }

    private sealed record RestartSession(string SessionId);

    private sealed record RestartRegistry
    {
        public static readonly RestartRegistry Instance = new();
    }

    private static string NewId(SessionType type) => $"{type.ToString().ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..12]}";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\z")] // \z: $ would take a trailing newline
    private static partial Regex ValidId();

    /// <summary>A session being opened: what opened it, who asked, and what came for it meanwhile.</summary>
    private sealed record Opening(object First, IActorRef Asker, List<(object Message, IActorRef Sender)> Waiting);

    /// <summary>An open session: its actor (null while it starts or starts again), its type, and the model its turns run on.</summary>
    private sealed record Registered(IActorRef? Actor, SessionType Type, string? Model);
}
