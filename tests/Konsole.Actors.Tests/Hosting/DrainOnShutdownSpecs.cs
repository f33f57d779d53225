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
        await router.ExpectMsgAsync<GetWorkInProgress>(); // left unanswered: the drain's ask times out (after 5 s)
        await router.ExpectMsgAsync<GetWorkInProgress>(TimeSpan.FromSeconds(15));
        router.Reply(new WorkInProgress(0, 0)); // nothing running: the drain is over
        await shutdown.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_refresh_running_holds_the_drain_until_it_ends()
    {
        var (router, shutdown) = Shutdown(drainTimeout: "10m");

        await router.ExpectMsgAsync<DrainAccounts>();
        await router.ExpectMsgAsync<GetWorkInProgress>();
        router.Reply(new WorkInProgress(0, 1)); // no turn, but a refresh cut short could lose the login
        await router.ExpectMsgAsync<GetWorkInProgress>();
        Assert.False(shutdown.IsCompleted);
        router.Reply(new WorkInProgress(0, 0));
        await shutdown.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Coordinated shutdown begun, with the drain asking a probe for the router.</summary>
    private (TestProbe Router, Task Shutdown) Shutdown(string drainTimeout)
    {
        var router = CreateTestProbe();
        KonsoleActors.DrainOnShutdown(Sys, router.Ref, Sandbox.Settings(FakeClaudeCli.Path, extraHocon: $"konsole.shutdown.drain-timeout = {drainTimeout}"));
        return (router, CoordinatedShutdown.Get(Sys).Run(CoordinatedShutdown.UnknownReason.Instance));
    }
}
