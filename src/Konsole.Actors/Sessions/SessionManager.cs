using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Sessions;

/// <summary>
/// Creates, finds and closes sessions, one <see cref="SessionActor"/> each, and forwards each session's messages
/// to it (the session answers the asker directly). A closed session's id stays known, so a prompt to it is told
/// the session was closed rather than that it never existed. Opened and closed sessions are journaled (after a
/// restart every open session is back, recovering its own state) and published on the event stream (quick
/// turns' one-prompt sessions aside).
/// </summary>
public sealed partial class SessionManager : ReceivePersistentActor, IWithTimers
{
    private const int ClosedIdsKept = 10_000;
    private const int SnapshotEvery = 500;
    private static readonly TimeSpan RestartMinBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan RestartMaxBackoff = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan FaultsForgottenAfter = TimeSpan.FromMinutes(5);

    private readonly IActorRef _router;
    private readonly SessionSettings _settings;
    private readonly Dictionary<string, Registered> _sessions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _closed = new(StringComparer.Ordinal);
    private readonly Queue<string> _closedOrder = new();
    private readonly HashSet<string> _restarting = new(StringComparer.Ordinal); // stopped on a fault, starting again
    private readonly Dictionary<string, (int Count, DateTime Last)> _failures = new(StringComparer.Ordinal); // recent faults, for the backoff
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public SessionManager(IActorRef router, SessionSettings settings)
    {
        _router = router;
        _settings = settings;

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is not SessionsSnapshot snapshot)
                return;
            foreach (var open in snapshot.Open)
                _sessions[open.SessionId] = new Registered(null, open.Type, open.Model);
            foreach (var id in snapshot.Closed)
                Remember(id);
        });
        Recover<SessionRegistered>(e => _sessions[e.SessionId] = new Registered(null, e.Type, e.Model));
        Recover<SessionUnregistered>(e =>
        {
            _sessions.Remove(e.SessionId);
            Remember(e.SessionId);
        });
        Recover<RecoveryCompleted>(_ =>
        {
            foreach (var (id, session) in _sessions.ToList())
                _sessions[id] = session with { Actor = Start(id, session) };
        });

        Command<CreateSession>(m =>
        {
            var id = m.SessionId ?? NewId(m.Type);
            if (Refusal(id, creating: true) is { } refused)
                Sender.Tell(refused);
            else
                Open(id, new Registered(null, m.Type, m.Model), m);
        });
        Command<SubmitPrompt>(m =>
        {
            if (!_sessions.ContainsKey(m.SessionId) && m.CreateAs is { } type && Refusal(m.SessionId, creating: true) is null)
                Open(m.SessionId, new Registered(null, type, null), m);
            else
                ForwardTo(m.SessionId, m);
        });
        Command<SubmitQuickTurn>(m =>
        {
            var id = NewId(SessionType.Chat);
            Context.ActorOf(SessionActor.Props(id, SessionType.Chat, _router, _settings.ReplayBuffer, durable: false), id).Forward(m);
        });
        Command<FollowEvents>(m => ForwardTo(m.SessionId, m));
        Command<Unfollow>(m =>
        {
            if (_sessions.TryGetValue(m.SessionId, out var session))
                session.Actor?.Tell(m);
        });
        Command<InterruptSession>(m => ForwardTo(m.SessionId, m));
        Command<GetSession>(m => ForwardTo(m.SessionId, m));
        Command<CloseSession>(m =>
        {
            if (!_sessions.TryGetValue(m.SessionId, out var session))
            {
                Sender.Tell(Refusal(m.SessionId, creating: false)!);
                return;
            }
            if (session.Actor is null || _restarting.Contains(m.SessionId))
            {
                Sender.Tell(Unavailable(m.SessionId));
                return;
            }
            _sessions.Remove(m.SessionId);
            _failures.Remove(m.SessionId);
            // Closed from now on: what comes for it next is refused here, not lost on a stopping actor.
            Remember(m.SessionId);
            Context.Unwatch(session.Actor);
            session.Actor!.Forward(m);
            Context.System.EventStream.Publish(new SessionEnded(m.SessionId, session.Type));
            Persist(new SessionUnregistered(m.SessionId), _ => SnapshotNow());
        });
        Command<Terminated>(m =>
        {
            var (id, stopped) = _sessions.FirstOrDefault(s => m.ActorRef.Equals(s.Value.Actor));
            if (id is null)
                return;
            // It stopped on a fault (its journal failed, or a bug): still open, it starts again from its journal.
            _sessions[id] = stopped with { Actor = null };
            _restarting.Add(id);
            var failures = _failures.TryGetValue(id, out var f) && DateTime.UtcNow - f.Last < FaultsForgottenAfter ? f.Count : 0;
            _failures[id] = (failures + 1, DateTime.UtcNow);
            var backoff = TimeSpan.FromMilliseconds(Math.Min(RestartMaxBackoff.TotalMilliseconds,
                RestartMinBackoff.TotalMilliseconds * Math.Pow(2, failures) * (0.8 + 0.4 * Random.Shared.NextDouble())));
            _log.Warning("Session {0} stopped on a fault; it starts again from its journal in {1:0.0}s", id, backoff.TotalSeconds);
            Timers.StartSingleTimer(id, new RestartSession(id), backoff);
        });
        Command<SessionFaulted>(m =>
        {
            if (_sessions.TryGetValue(m.SessionId, out var session) && Sender.Equals(session.Actor))
                _restarting.Add(m.SessionId); // until it is back: see Terminated
        });
        Command<RestartSession>(m =>
        {
            if (_sessions.TryGetValue(m.SessionId, out var session) && _restarting.Remove(m.SessionId))
                _sessions[m.SessionId] = session with { Actor = Start(m.SessionId, session) };
        });
        Command<SaveSnapshotSuccess>(m => DeleteMessages(m.Metadata.SequenceNr));
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { });
    }

    public override string PersistenceId => "konsole-sessions";

    protected override void OnRecoveryFailure(Exception reason, object? message = null) =>
        StateUnrecoverable.StopHost(Context, PersistenceId, reason);

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef router, SessionSettings settings) =>
        Akka.Actor.Props.Create(() => new SessionManager(router, settings));

    /// <summary>Session ids: letters, digits and <c>- _ . :</c>, up to 128 characters.</summary>
    public static bool IsValidId(string id) => ValidId().IsMatch(id);

    // A session actor that fails is stopped, never restarted in place with state its journal may not have; it starts
    // again from its journal (see Terminated).
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    /// <summary>Journals the new session, then starts it and hands it <paramref name="first"/> (its creation or first prompt).</summary>
    private void Open(string id, Registered session, object first)
    {
        _sessions[id] = session; // taken at once: a second create of the same id waits for nothing
        Persist(new SessionRegistered(id, session.Type, session.Model), _ =>
        {
            var actor = Start(id, session);
            _sessions[id] = session with { Actor = actor };
            Context.System.EventStream.Publish(new SessionOpened(new SessionInfo(id, session.Type, null, "idle", null, 0, 0, session.Model)));
            actor.Forward(first is CreateSession ? new GetSession(id) : first);
            SnapshotNow();
        });
    }

    private IActorRef Start(string id, Registered session) =>
        Context.Watch(Context.ActorOf(SessionActor.Props(id, session.Type, _router, _settings.ReplayBuffer, model: session.Model),
            Uri.EscapeDataString(id)));

    private void ForwardTo(string id, object message)
    {
        if (!_sessions.TryGetValue(id, out var session))
            Sender.Tell(Refusal(id, creating: false)!);
        else if (session.Actor is { } actor && !_restarting.Contains(id))
            actor.Forward(message);
        else
            Sender.Tell(Unavailable(id));
    }

    private static SessionRejected Unavailable(string id) =>
        new(SessionErrorCodes.Unavailable, $"session {id} is starting (new, or again after a fault); try again in a moment");

    /// <summary>Why <paramref name="id"/> cannot be used (null: it can).</summary>
    private SessionRejected? Refusal(string id, bool creating)
    {
        if (!IsValidId(id))
            return new SessionRejected(SessionErrorCodes.InvalidId,
                "a session id is 1 to 128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit");
        if (_closed.Contains(id))
            return new SessionRejected(SessionErrorCodes.Closed, $"session {id} was closed");
        if (creating && _sessions.ContainsKey(id))
            return new SessionRejected(SessionErrorCodes.Exists, $"session {id} already exists");
        return creating ? null : new SessionRejected(SessionErrorCodes.NotFound, $"no session {id}");
    }

    private void Remember(string id)
    {
        if (!_closed.Add(id))
            return;
        _closedOrder.Enqueue(id);
        if (_closedOrder.Count > ClosedIdsKept)
            _closed.Remove(_closedOrder.Dequeue());
    }

    private void SnapshotNow()
    {
        if (LastSequenceNr % SnapshotEvery == 0)
            SaveSnapshot(new SessionsSnapshot(
                _sessions.Select(s => new SessionRegistered(s.Key, s.Value.Type, s.Value.Model)).ToList(), [.. _closedOrder]));
    }

    private sealed record RestartSession(string SessionId);

    private static string NewId(SessionType type) => $"{type.ToString().ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..12]}";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    private static partial Regex ValidId();

    /// <summary>An open session: its actor (null while it starts or starts again), its type, and the model its turns run on.</summary>
    private sealed record Registered(IActorRef? Actor, SessionType Type, string? Model);
}
