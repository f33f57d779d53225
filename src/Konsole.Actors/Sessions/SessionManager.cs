using System.Text.RegularExpressions;
using Akka.Actor;
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
public sealed partial class SessionManager : ReceivePersistentActor
{
    private const int ClosedIdsKept = 10_000;
    private const int SnapshotEvery = 500;

    private readonly IActorRef _router;
    private readonly SessionSettings _settings;
    private readonly Dictionary<string, (IActorRef? Actor, SessionType Type)> _sessions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _closed = new(StringComparer.Ordinal);
    private readonly Queue<string> _closedOrder = new();

    public SessionManager(IActorRef router, SessionSettings settings)
    {
        _router = router;
        _settings = settings;

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is not SessionsSnapshot snapshot)
                return;
            foreach (var open in snapshot.Open)
                _sessions[open.SessionId] = (null, open.Type);
            foreach (var id in snapshot.Closed)
                Remember(id);
        });
        Recover<SessionRegistered>(e => _sessions[e.SessionId] = (null, e.Type));
        Recover<SessionUnregistered>(e =>
        {
            _sessions.Remove(e.SessionId);
            Remember(e.SessionId);
        });
        Recover<RecoveryCompleted>(_ =>
        {
            foreach (var (id, session) in _sessions.ToList())
                _sessions[id] = (Start(id, session.Type), session.Type);
        });

        Command<CreateSession>(m =>
        {
            var id = m.SessionId ?? NewId(m.Type);
            if (Refusal(id, creating: true) is { } refused)
                Sender.Tell(refused);
            else
                Open(id, m.Type, m);
        });
        Command<SubmitPrompt>(m =>
        {
            if (!_sessions.ContainsKey(m.SessionId) && m.CreateAs is { } type && Refusal(m.SessionId, creating: true) is null)
                Open(m.SessionId, type, m);
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
            if (!_sessions.Remove(m.SessionId, out var session))
            {
                Sender.Tell(Refusal(m.SessionId, creating: false)!);
                return;
            }
            // Closed from now on: what comes for it next is refused here, not lost on a stopping actor.
            Remember(m.SessionId);
            Context.Unwatch(session.Actor);
            session.Actor!.Forward(m);
            Context.System.EventStream.Publish(new SessionEnded(m.SessionId, session.Type));
            Persist(new SessionUnregistered(m.SessionId), _ => SnapshotNow());
        });
        Command<Terminated>(m =>
        {
            var ended = _sessions.FirstOrDefault(s => m.ActorRef.Equals(s.Value.Actor));
            if (ended.Key is null)
                return;
            _sessions.Remove(ended.Key);
            Remember(ended.Key);
            Context.System.EventStream.Publish(new SessionEnded(ended.Key, ended.Value.Type));
            Persist(new SessionUnregistered(ended.Key), _ => SnapshotNow());
        });
        Command<SaveSnapshotSuccess>(m => DeleteMessages(m.Metadata.SequenceNr));
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { });
    }

    public override string PersistenceId => "konsole-sessions";

    public static Props Props(IActorRef router, SessionSettings settings) =>
        Akka.Actor.Props.Create(() => new SessionManager(router, settings));

    /// <summary>Session ids: letters, digits and <c>- _ . :</c>, up to 128 characters.</summary>
    public static bool IsValidId(string id) => ValidId().IsMatch(id);

    // Session actors fail only on a bug: stop them (the manager publishes their end), never restart with lost state.
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    /// <summary>Journals the new session, then starts it and hands it <paramref name="first"/> (its creation or first prompt).</summary>
    private void Open(string id, SessionType type, object first)
    {
        _sessions[id] = (null, type); // taken at once: a second create of the same id waits for nothing
        Persist(new SessionRegistered(id, type), _ =>
        {
            var actor = Start(id, type);
            _sessions[id] = (actor, type);
            Context.System.EventStream.Publish(new SessionOpened(new SessionInfo(id, type, null, "idle", null, 0, 0)));
            actor.Forward(first is CreateSession ? new GetSession(id) : first);
            SnapshotNow();
        });
    }

    private IActorRef Start(string id, SessionType type) =>
        Context.Watch(Context.ActorOf(SessionActor.Props(id, type, _router, _settings.ReplayBuffer), Uri.EscapeDataString(id)));

    private void ForwardTo(string id, object message)
    {
        if (_sessions.TryGetValue(id, out var session) && session.Actor is { } actor)
            actor.Forward(message);
        else
            Sender.Tell(Refusal(id, creating: false)!);
    }

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
                _sessions.Select(s => new SessionRegistered(s.Key, s.Value.Type)).ToList(), [.. _closedOrder]));
    }

    private static string NewId(SessionType type) => $"{type.ToString().ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..12]}";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    private static partial Regex ValidId();
}
