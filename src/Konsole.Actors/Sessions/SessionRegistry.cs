using Akka.Actor;
using Akka.Persistence;
using Konsole.Actors.Durability;
using static Konsole.Actors.Sessions.SessionRegistryProtocol;

namespace Konsole.Actors.Sessions;

/// <summary>
/// The journal of which sessions are open and which were closed, a child of the <see cref="SessionManager"/>: reads them
/// back when it starts (<see cref="RegistryRecovered"/> to its parent) and records each session opened and closed. A
/// write that fails stops it, as Akka.Persistence stops any persistent actor then; the manager goes on serving the
/// sessions it holds and starts another. A registry that cannot be read back when the host starts stops the host
/// (<see cref="StateUnrecoverable"/>); one started again after a failed write stops alone, and is started again later.
/// </summary>
public sealed class SessionRegistry : ReceivePersistentActor
{
    private readonly bool _firstStart;
    public const int ClosedIdsKept = 10_000;
    private const int SnapshotEvery = 500;

    private readonly Dictionary<string, SessionRegistered> _open = new(StringComparer.Ordinal);
    private readonly RecentIds _closed = new(ClosedIdsKept);

    public SessionRegistry(bool firstStart)
    {
        _firstStart = firstStart;
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
        Recover<RecoveryCompleted>(_ => Context.Parent.Tell(new RegistryRecovered([.. _open.Values], [.. _closed])));

        Command<RecordOpened>(m => Persist(m.Session, e =>
        {
            _open[e.SessionId] = e;
            Sender.Tell(new SessionRecorded(e.SessionId));
            SnapshotNow();
        }));
        Command<RecordClosed>(m =>
        {
            if (_closed.Contains(m.SessionId))
            {
                Sender.Tell(new CloseRecorded(m.SessionId));
                return;
            }
            Persist(new SessionUnregistered(m.SessionId), e =>
            {
                Closed(e.SessionId);
                Sender.Tell(new CloseRecorded(e.SessionId));
                SnapshotNow();
            });
        });
        // A snapshot holds every closed id kept (up to ClosedIdsKept): the events and snapshots before it are of no more use,
        // and kept they would fill the database by one such list every SnapshotEvery writes.
        Command<SaveSnapshotSuccess>(m =>
        {
            DeleteMessages(m.Metadata.SequenceNr);
            DeleteSnapshots(new SnapshotSelectionCriteria(m.Metadata.SequenceNr - 1));
        });
        Command<SaveSnapshotFailure>(_ => { });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { }); // the next snapshot's deletes those before it too
    }

    public override string PersistenceId => "konsole-sessions";

    protected override void OnRecoveryFailure(Exception reason, object? message = null) =>
        StateUnrecoverable.RecoveryFailed(Context, PersistenceId, reason, _firstStart);

    // A write the journal refused (it could not serialize it): as a failed one, it stops, so nothing waits for it.
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        base.OnPersistRejected(cause, @event, sequenceNr);
        Context.Stop(Self);
    }

    /// <param name="firstStart">Started with the host: if it cannot be read back, the host stops.</param>
    public static Props Props(bool firstStart) => Akka.Actor.Props.Create(() => new SessionRegistry(firstStart));

    private void Closed(string id)
    {
        _open.Remove(id);
        _closed.Add(id);
    }

    private void SnapshotNow()
    {
        if (LastSequenceNr % SnapshotEvery == 0)
            SaveSnapshot(new SessionsSnapshot([.. _open.Values], [.. _closed]));
    }
}
