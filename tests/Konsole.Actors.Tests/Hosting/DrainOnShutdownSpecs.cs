using Akka.Actor;
using Akka.TestKit;
using Konsole.Actors.Hosting;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Actors.Tests.Hosting;

/// <summary>The host's drain on coordinated shutdown, against a probe standing for the router.</summary>
public sealed class DrainOnShutdownSpecs(ITestOutputHelper output)
    : KonsoleSpec(output, accounts: 1, config: "akka.coordinated-shutdown.phases.service-requests-done.timeout = 60s")
{
    [Fact]
    public async Task A_router_that_does_not_answer_in_time_is_asked_again_until_the_drains_deadline()
    {
        var (router, shutdown) = Shutdown(drainTimeout: "20s");

        await router.ExpectMsgAsync<DrainAccounts>();
        await router.ExpectMsgAsync<GetReadiness>();
        router.Reply(Readiness.Ready); // it routes: turns may be running
        await router.ExpectMsgAsync<GetAccounts>(); // left unanswered: the drain's ask times out (after 5 s)
        await router.ExpectMsgAsync<GetAccounts>(TimeSpan.FromSeconds(15));
        router.Reply(new AccountsView(new RoleAssignment("alpha", "alpha"), [])); // no turn running: the drain is over
        await shutdown.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_router_still_reading_the_roles_back_has_routed_nothing_and_the_drain_ends_at_once()
    {
        var (router, shutdown) = Shutdown(drainTimeout: "10m");

        await router.ExpectMsgAsync<DrainAccounts>(); // its accounts drain all the same: what it routes later is refused
        await router.ExpectMsgAsync<GetReadiness>();
        router.Reply(GetReadiness.ReadingRolesBack);
        await shutdown.WaitAsync(TimeSpan.FromSeconds(30)); // the drain would have asked until its deadline, 10 minutes on
        router.ExpectNoMsg(TimeSpan.Zero);
    }

    /// <summary>Coordinated shutdown begun, with the drain asking a probe for the router.</summary>
    private (TestProbe Router, Task Shutdown) Shutdown(string drainTimeout)
    {
        var router = CreateTestProbe();
        KonsoleActors.DrainOnShutdown(Sys, router.Ref, Sandbox.Settings(FakeClaudeCli.Path, extraHocon: $"konsole.shutdown.drain-timeout = {drainTimeout}"));
        return (router, CoordinatedShutdown.Get(Sys).Run(CoordinatedShutdown.UnknownReason.Instance));
    }
}
