using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Actors.Routing;

/// <summary>Messages between the <see cref="RoleRouter"/> and its <see cref="RolesJournal"/>.</summary>
public static class RolesJournalProtocol
{
    /// <summary>
    /// To the parent, once the journal is read back: the last roles recorded (null: none yet), and the configured roles they
    /// were recorded under (null: not known).
    /// </summary>
    public sealed record RolesRecovered(RoleAssignment? Roles, RoleAssignment? ConfiguredThen = null);

    /// <summary>Records <paramref name="Roles"/> (nothing when they are the last recorded).</summary>
    public sealed record RecordRoles(RoleAssignment Roles);

    /// <summary>
    /// Records <paramref name="Roles"/> after the roles given before them (nothing when they are the last recorded), then
    /// stops. Null: the router has not read the roles back yet; the journal stops once the writes before it are done.
    /// </summary>
    public sealed record StopJournal(RoleAssignment? Roles);
}
