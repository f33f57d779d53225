using System.Threading.Channels;
using Akka.Actor;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using static Konsole.Gateway.GatewayProtocol;

namespace Konsole.Gateway;

/// <summary>
/// What the HTTP endpoints talk to: forwards account and role messages to the <see cref="RoleRouter"/> and session
/// messages to the <see cref="SessionManager"/> (they answer the asker directly), and owns one
/// <see cref="SystemEventsActor"/> per follower of the system's events.
/// </summary>
public sealed class GatewayActor : ReceiveActor
{
    private int _followers;

    public GatewayActor(IActorRef router, IActorRef sessions)
    {
        Receive<FollowSystemEvents>(_ =>
        {
            var channel = Channel.CreateBounded<object>(new BoundedChannelOptions(SystemEventsActor.Capacity)
            {
                FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the follower is then ended
                SingleReader = true,
                SingleWriter = true,
            });
            var follower = SystemEventsActor.Start(Context, Context.System.EventStream, channel.Writer, $"events-{++_followers}");
            Sender.Tell(new SystemEventsFollowed(follower.Path.Name, channel.Reader));
        });
        Receive<UnfollowSystemEvents>(m => Context.Child(m.SubscriptionId).Tell(PoisonPill.Instance));
        Receive<object>(m => m.GetType().DeclaringType == typeof(SessionProtocol), m => sessions.Forward(m));
        Receive<object>(m => m.GetType().DeclaringType == typeof(RoleRouterProtocol), m => router.Forward(m));
    }

    public static Props Props(IActorRef router, IActorRef sessions) => Akka.Actor.Props.Create(() => new GatewayActor(router, sessions));
}
