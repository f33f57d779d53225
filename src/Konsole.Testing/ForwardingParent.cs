using Akka.Actor;

namespace Konsole.Testing;

/// <summary>
/// Creates a child from <c>childProps</c> and stands in as its parent: what the child sends its parent goes to
/// <c>probe</c>; everything else is forwarded to the child. A failing child is stopped, and this actor stops with
/// its child, so watching it tells when the child has stopped.
/// </summary>
public sealed class ForwardingParent : ReceiveActor
{
    public ForwardingParent(Props childProps, IActorRef probe)
    {
        var child = Context.Watch(Context.ActorOf(childProps, "child"));
        Receive<Terminated>(m => m.ActorRef.Equals(child), _ => Context.Stop(Self));
        ReceiveAny(m =>
        {
            if (Sender.Equals(child))
                probe.Forward(m);
            else
                child.Forward(m);
        });
    }

    public static Props Props(Props childProps, IActorRef probe) => Akka.Actor.Props.Create(() => new ForwardingParent(childProps, probe));

    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);
}
