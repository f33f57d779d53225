using Akka.Actor;
using Akka.TestKit;
using Konsole.Actors.Configuration;
using Konsole.Actors.Hosting;
using Konsole.Actors.Sessions;
using System.Threading.Channels;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Testing;

public static class KonsoleTestKitExtensions
{
    /// <summary>Starts the role router and its accounts in the spec's actor system, as the host does.</summary>
    public static IActorRef StartAccounts(this TestKitBase kit, KonsoleSettings settings) => KonsoleActors.StartRouter(kit.Sys, settings);

    /// <summary>Starts the session manager in the spec's actor system, its sessions routed through <paramref name="router"/>.</summary>
    public static IActorRef StartSessions(this TestKitBase kit, IActorRef router, KonsoleSettings settings) =>
        KonsoleActors.StartSessions(kit.Sys, router, settings);

    /// <summary>Reads <paramref name="events"/> until it completes; throws when that takes longer than <paramref name="timeout"/>.</summary>
    public static async Task<IReadOnlyList<SessionEvent>> ReadToEndAsync(this ChannelReader<SessionEvent> events, TimeSpan timeout)
    {
        var read = new List<SessionEvent>();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await foreach (var item in events.ReadAllAsync(cancel.Token))
                read.Add(item);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the events did not end within {timeout.TotalSeconds:0.#}s; read {read.Count}" +
                (read.Count > 0 ? $", the last: {read[^1].Type} {read[^1].Text[..Math.Min(200, read[^1].Text.Length)]}" : ""));
        }
        return read;
    }

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
