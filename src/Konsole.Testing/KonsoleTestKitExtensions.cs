using Akka.Actor;
using Akka.TestKit;
using Konsole.Actors.Configuration;
using Konsole.Actors.Hosting;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Testing;

public static class KonsoleTestKitExtensions
{
    /// <summary>Starts the role router and its accounts in the spec's actor system, as the host does.</summary>
    public static IActorRef StartAccounts(this TestKitBase kit, KonsoleSettings settings) => KonsoleActors.StartRouter(kit.Sys, settings);

    /// <summary>Waits until every account of <paramref name="router"/> has its hot processes warm.</summary>
    public static async Task WaitUntilWarmAsync(this TestKitBase kit, IActorRef router, TimeSpan? timeout = null)
    {
        var limit = timeout ?? KonsoleSpec.TurnTimeout;
        await kit.AwaitConditionAsync(async () =>
        {
            var view = await router.Ask<AccountsView>(GetAccounts.Instance, limit);
            return view.Accounts.All(a => a.Status.Warm);
        }, limit, TimeSpan.FromMilliseconds(50));
    }
}
