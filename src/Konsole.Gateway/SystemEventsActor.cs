using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Konsole.Actors.Accounts;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;

namespace Konsole.Gateway;

/// <summary>
/// One follower of the system's events: subscribes to them on the event stream and writes them to a bounded reader.
/// A follower that falls <see cref="Capacity"/> events behind is ended (its reader completes with a
/// <see cref="FellBehindException"/> once the events it holds are read), so a stuck client cannot make the host hold
/// an ever-growing backlog.
/// </summary>
public sealed class SystemEventsActor : ReceiveActor
{
    public const int Capacity = 10_000;

    /// <summary>What is followed: these types, as published.</summary>
    public static readonly IReadOnlyList<Type> Followed =
    [
        typeof(RoleRouterProtocol.AccountsSwapped),
        typeof(AccountProtocol.AccountStateChanged),
        typeof(AccountProtocol.ProcessRestarted),
        typeof(AccountProtocol.OAuthTokenRefreshed),
        typeof(AccountProtocol.AccountRateLimited),
        typeof(AccountProtocol.OAuthRefreshFailed),
        typeof(SessionProtocol.SessionOpened),
        typeof(SessionProtocol.SessionEnded),
    ];

    private readonly ChannelWriter<object> _writer;

    public SystemEventsActor(ChannelWriter<object> writer)
    {
        _writer = writer;
        ReceiveAny(e =>
        {
            if (_writer.TryWrite(e))
                return;
            _writer.TryComplete(new FellBehindException());
            Context.Stop(Self);
        });
    }

    /// <summary>How a follower's reader ends when it fell <see cref="Capacity"/> events behind.</summary>
    public sealed class FellBehindException() : Exception($"the follower fell {Capacity} events behind");

    /// <summary>
    /// Starts a follower under <paramref name="parent"/>, subscribed before this returns: an event published once the caller
    /// has answered its client is not missed (subscribing in the actor's PreStart, which runs later, missed those).
    /// </summary>
    public static IActorRef Start(IActorRefFactory parent, EventStream events, ChannelWriter<object> writer, string name)
    {
        var follower = parent.ActorOf(Akka.Actor.Props.Create(() => new SystemEventsActor(writer)), name);
        foreach (var type in Followed)
            events.Subscribe(follower, type);
        return follower;
    }

    protected override void PostStop()
    {
        Context.System.EventStream.Unsubscribe(Self);
        _writer.TryComplete();
    }
}
