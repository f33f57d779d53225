using Akka.Actor;
using Akka.Persistence;
using Konsole.Actors.Durability;
using static Konsole.Actors.Sessions.SessionRegistryProtocol;

namespace Konsole.Actors.Sessions;

/// <summary>
/// The journal of which sessions are open and which were closed, a child of the <see cref="SessionManager"/>: reads them
/// back when it starts (<see cref="RegistryRecovered"/> to its parent) and records each session opened and closed. A
/// write that fails stops it, as Akka.Persistence stops any persistent actor then; the manager goes on serving the
/// sessions it holds and starts another. A registry that cannot be read back stops the host (<see cref="StateUnrecoverable"/>).
/// </summary>
public sealed class SessionRegistry : ReceivePersistentActor
{
    public const int ClosedIdsKept = 10_000;
    private const int SnapshotEvery = 500;

    private readonly Dictionary<string, SessionRegistered> _open = new(StringComparer.Ordinal);
    private readonly HashSet<string> _closed = new(StringComparer.Ordinal);
    private readonly Queue<string> _closedOrder = new();

    public SessionRegistry()
    {
        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is not SessionsSnapshot snapshot)
                return;
            foreach (var open in snapshot.Open)
                _open[open.SessionId] = open;
            foreach (var id in snapshot.Closed)
                Closed(id);
        });
        Recover<SessionRegistered>(e => _open[e.SessionId] = e);
        Recover<SessionUnregistered>(e => Closed(e.SessionId));
        Recover<RecoveryCompleted>(_ => Context.Parent.Tell(new RegistryRecovered([.. _open.Values], [.. _closedOrder])));

        Command<RecordOpened>(m => Persist(m.Session, e =>
        {
            _open[e.SessionId] = e;
            Sender.Tell(new SessionRecorded(e.SessionId));
            SnapshotNow();
        }));
        Command<RecordClosed>(m =>
        {
            if (_closed.Contains(m.SessionId))
                return;
            Persist(new SessionUnregistered(m.SessionId), e =>
            {
                Closed(e.SessionId);
                SnapshotNow();
            });
        });
        Command<SaveSnapshotSuccess>(m => DeleteMessages(m.Metadata.SequenceNr));
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { });
    }

    public override string PersistenceId => "konsole-sessions";

    protected override void OnRecoveryFailure(Exception reason, object? message = null) =>
        StateUnrecoverable.StopHost(Context, PersistenceId, reason);

    public static Props Props() => Akka.Actor.Props.Create(() => new SessionRegistry());

    private void Closed(string id)
    {
        _open.Remove(id);
        if (!_closed.Add(id))
            return;
        _closedOrder.Enqueue(id);
        if (_closedOrder.Count > ClosedIdsKept)
            _closed.Remove(_closedOrder.Dequeue());
    }

    private void SnapshotNow()
    {
        if (LastSequenceNr % SnapshotEvery == 0)
            SaveSnapshot(new SessionsSnapshot([.. _open.Values], [.. _closedOrder]));
    }
}
