using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Konsole.Actors.Configuration;
using Konsole.Actors.Processes;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;

namespace Konsole.Actors.Hosting;

public static class KonsoleActors
{
    /// <summary>
    /// Ends CLI processes a killed host left behind (see <see cref="OrphanReaper"/>), then starts the
    /// <see cref="RoleRouter"/>, and through it one account actor per configured account with its hot processes. On coordinated shutdown the router is stopped first, so prompts it holds end with
    /// <c>account_unavailable</c>; every CLI process is then stopped and waited for before the system ends.
    /// </summary>
    public static IActorRef StartRouter(ActorSystem system, KonsoleSettings settings)
    {
        var runDir = Path.Combine(settings.DataDir, "run");
        if (OrphanReaper.Reap(runDir) is { Count: > 0 } orphans)
            system.Log.Warning("Ended {0} CLI process(es) a previous host left running: pid {1}", orphans.Count, string.Join(", ", orphans));
        CliProcessTracker.Get(system).RecordIn(runDir);
        var router = system.ActorOf(RoleRouter.Props(settings), "roles");
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceStop, "stop-accounts", async () =>
        {
            try
            {
                await router.GracefulStop(settings.Claude.StopGrace + TimeSpan.FromSeconds(5), RoleRouterProtocol.StopRouter.Instance).ConfigureAwait(false);
            }
            catch (TaskCanceledException)
            {
                // still stopping: the CLI processes are stopped and waited for in a later phase all the same
            }
            return Akka.Done.Instance;
        });
        return router;
    }

    /// <summary>
    /// Coordinated shutdown's phases long enough for what runs in them: the drain (<see cref="DrainOnShutdown"/>: drain-timeout
    /// plus interrupt-timeout), stopping the accounts (stop-grace + 5 s for their CLIs) and stopping a CLI that ignores the end
    /// of its input (stop-grace + 7 s: SIGTERM, then the kill): each phase outlasts its own wait, so no CLI outlives the system.
    /// </summary>
    public static Config ShutdownPhases(KonsoleSettings settings)
    {
        var stopPhase = StopPhase(settings);
        return ConfigurationFactory.ParseString($"""
            akka.coordinated-shutdown.phases.service-requests-done.timeout = {(int)(DrainPhase(settings) + TimeSpan.FromSeconds(5)).TotalSeconds}s
            akka.coordinated-shutdown.phases.service-stop.timeout = {(int)stopPhase.TotalSeconds}s
            akka.coordinated-shutdown.phases.before-actor-system-terminate.timeout = {Math.Max(30, (int)stopPhase.TotalSeconds)}s
            """);
    }

    /// <summary>The longest the drain waits: drain-timeout, then interrupt-timeout for the turns it interrupts.</summary>
    public static TimeSpan DrainPhase(KonsoleSettings settings) => settings.DrainTimeout + settings.Claude.InterruptTimeout;

    /// <summary>The longest stopping the accounts and their CLIs takes in one phase.</summary>
    public static TimeSpan StopPhase(KonsoleSettings settings) => settings.Claude.StopGrace + TimeSpan.FromSeconds(15);

    /// <summary>
    /// On coordinated shutdown, before the accounts stop: drains them (see <c>AccountProtocol.Drain</c>) and waits until no
    /// turn runs or <c>shutdown.drain-timeout</c> plus <c>claude.interrupt-timeout</c> has passed, so turns whose clients
    /// are gone (workers, disconnected streams) also get to finish. Added by <see cref="KonsoleHostingExtensions.WithKonsoleAccounts"/>;
    /// tests that stop a system skip it.
    /// </summary>
    public static void DrainOnShutdown(ActorSystem system, IActorRef router, KonsoleSettings settings) =>
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceRequestsDone, "drain-turns", async () =>
        {
            var deadline = DateTime.UtcNow + DrainPhase(settings);
            router.Tell(new RoleRouterProtocol.DrainAccounts(settings.DrainTimeout));
            while (DateTime.UtcNow < deadline)
            {
                RoleRouterProtocol.WorkInProgress work;
                try
                {
                    // Answered also while the roles are read back (a database that does not answer), when nothing was routed.
                    work = await router.Ask<RoleRouterProtocol.WorkInProgress>(RoleRouterProtocol.GetWorkInProgress.Instance, TimeSpan.FromSeconds(5))
                        .ConfigureAwait(false);
                }
                catch (AskTimeoutException)
                {
                    continue; // a router slow to answer (a machine busy starting CLIs) must not cut the running turns' time short
                }
                if (work is { BusyAccounts: 0, Refreshing: 0 })
                    break;
                await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
            }
            return Akka.Done.Instance;
        });

    /// <summary>Starts the <see cref="SessionManager"/>, whose sessions send their prompts through <paramref name="router"/>.</summary>
    public static IActorRef StartSessions(ActorSystem system, IActorRef router, KonsoleSettings settings) =>
        system.ActorOf(SessionManager.Props(router, settings.Sessions), "sessions");
}
