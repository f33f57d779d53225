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

    /// <summary>Stops the journal once the roles given before it are written.</summary>
    public sealed record StopJournal
    {
        public static readonly StopJournal Instance = new();
    }
}
