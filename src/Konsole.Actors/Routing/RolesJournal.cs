using Akka.Actor;
using Akka.Persistence;
using Konsole.Actors.Durability;
using static Konsole.Actors.Routing.RoleRouterProtocol;
using static Konsole.Actors.Routing.RolesJournalProtocol;

namespace Konsole.Actors.Routing;

/// <summary>
/// The roles' journal, a child of the <see cref="RoleRouter"/>: reads the last assignment back when it starts
/// (<see cref="RolesRecovered"/> to its parent) and records each new one. A write that fails stops it, as Akka.Persistence
/// stops any persistent actor then; the router, which routes from the roles it holds all along, starts another, which
/// records them again. Roles that cannot be read back when the host starts stop the host (<see cref="StateUnrecoverable"/>);
/// a journal started again after a failed write stops alone, and is started again later.
/// </summary>
public sealed class RolesJournal : ReceivePersistentActor
{
    private readonly bool _firstStart;
    private RoleAssignment? _recorded;
    private RoleAssignment? _recordedUnder;

    public RolesJournal(bool firstStart, RoleAssignment configured)
    {
        _firstStart = firstStart;
        Recover<RolesAssigned>(e =>
        {
            _recorded = new RoleAssignment(e.Dashboard, e.QuickTurn);
            _recordedUnder = e is { ConfiguredDashboard: { } dashboard, ConfiguredQuickTurn: { } quickTurn } ? new RoleAssignment(dashboard, quickTurn) : null;
        });
        Recover<RecoveryCompleted>(_ => Context.Parent.Tell(new RolesRecovered(_recorded, _recordedUnder)));
        Command<RecordRoles>(m => Record(m.Roles, configured, then: null));
        // A command: it waits, as RecordRoles do, for the write under way; then the roles the router holds are recorded.
        Command<StopJournal>(m =>
        {
            if (m.Roles is null)
                Context.Stop(Self);
            else
                Record(m.Roles, configured, then: () => Context.Stop(Self));
        });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(_ => { }); // the next assignment's delete takes those too
    }

    private void Record(RoleAssignment roles, RoleAssignment configured, Action? then)
    {
        if (roles == _recorded && configured == _recordedUnder)
        {
            then?.Invoke();
            return;
        }
        Persist(new RolesAssigned(roles.Dashboard, roles.QuickTurn, configured.Dashboard, configured.QuickTurn), _ =>
        {
            _recorded = roles;
            _recordedUnder = configured;
            // Only the last assignment is read back: those before it would fill the database, and be read at every start.
            if (LastSequenceNr > 1)
                DeleteMessages(LastSequenceNr - 1);
            then?.Invoke();
        });
    }

    public override string PersistenceId => "konsole-roles";

    protected override void OnRecoveryFailure(Exception reason, object? message = null) =>
        StateUnrecoverable.RecoveryFailed(Context, PersistenceId, reason, _firstStart);

    /// <param name="firstStart">Started with the host: if it cannot be read back, the host stops.</param>
    /// <param name="configured">The roles <c>konsole.roles</c> gives, recorded with each assignment.</param>
    public static Akka.Actor.Props Props(bool firstStart, RoleAssignment configured) =>
        Akka.Actor.Props.Create(() => new RolesJournal(firstStart, configured));
}
