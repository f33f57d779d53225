using Akka.Actor;
using Akka.Event;

namespace Konsole.Actors.Durability;

/// <summary>
/// Why the host stops: an actor it cannot run without (the roles, the session registry) could not read its state back
/// from the journal. Running on without it would leave a host that answers nothing and never becomes ready; stopping
/// says so at once, and a supervisor (systemd, ...) can start it again.
/// </summary>
public sealed class StateUnrecoverable(string persistenceId, Exception cause) : CoordinatedShutdown.Reason
{
    public string PersistenceId { get; } = persistenceId;

    public Exception Cause { get; } = cause;

    /// <summary>The host's exit code (<c>konsole</c> exits 2 for a configuration it refuses, 3 without the CLI).</summary>
    public override int ExitCode => 4;

    /// <summary>Logs the failure and stops the actor system (the host stops with it).</summary>
    public static void StopHost(IActorContext context, string persistenceId, Exception cause)
    {
        context.GetLogger().Error(cause, "Could not read the state of {0} back from the journal (konsole.persistence): the host stops", persistenceId);
        CoordinatedShutdown.Get(context.System).Run(new StateUnrecoverable(persistenceId, cause));
    }

    /// <summary>
    /// What an actor keeping state of its own in the journal does when it cannot read it back: started with the host, it stops
    /// the host; started again by its parent later (after a failed write), it says so and stops alone (Akka.Persistence stops
    /// it), and its parent tries again.
    /// </summary>
    public static void RecoveryFailed(IActorContext context, string persistenceId, Exception cause, bool hostStarting)
    {
        if (hostStarting)
            StopHost(context, persistenceId, cause);
        else
            context.GetLogger().Warning(cause, "Could not read the state of {0} back from the journal (konsole.persistence); trying again later",
                persistenceId);
    }

    public override string ToString() => $"the state of {PersistenceId} could not be read back from the journal: {Cause.Message}";
}
