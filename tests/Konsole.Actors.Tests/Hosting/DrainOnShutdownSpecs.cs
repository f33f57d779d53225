using Akka.Actor;
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
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: "konsole.shutdown.drain-timeout = 20s");
        var router = CreateTestProbe();
        KonsoleActors.DrainOnShutdown(Sys, router.Ref, settings);

        var shutdown = CoordinatedShutdown.Get(Sys).Run(CoordinatedShutdown.UnknownReason.Instance);

        await router.ExpectMsgAsync<DrainAccounts>();
        await router.ExpectMsgAsync<GetAccounts>(); // left unanswered: the drain's ask times out (after 5 s)
        await router.ExpectMsgAsync<GetAccounts>(TimeSpan.FromSeconds(15));
        router.Reply(new AccountsView(new RoleAssignment("alpha", "alpha"), [])); // no turn running: the drain is over
        await shutdown.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
