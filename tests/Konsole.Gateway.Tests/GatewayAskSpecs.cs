using System.Threading.Channels;
using Akka.Actor;
using Konsole.Actors.Sessions;
using Microsoft.AspNetCore.Http;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Gateway.Tests;

/// <summary>An endpoint's question to the actors answered only after the endpoint stopped waiting.</summary>
public sealed class GatewayAskSpecs : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly ActorSystem _system = ActorSystem.Create("gateway-ask-specs", "akka.loglevel = WARNING");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task What_a_late_answer_opened_is_given_up_instead_of_left_behind(bool clientLeft)
    {
        var seen = Channel.CreateUnbounded<(object Message, IActorRef Sender)>();
        var gateway = _system.ActorOf(Props.Create(() => new Recorder(seen.Writer)));
        using var leaving = new CancellationTokenSource();
        var context = new DefaultHttpContext { RequestAborted = leaving.Token };

        var asking = GatewayEndpoints.AskAsync<EventsFollowed>(context, gateway, new FollowEvents("ses-1", 0),
            clientLeft ? Timeout : TimeSpan.FromMilliseconds(50));
        var (asked, asker) = await seen.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        if (clientLeft)
            await leaving.CancelAsync();
        var (reply, problem) = await asking.WaitAsync(Timeout); // gave up: timed out, or the client left
        asker.Tell(new EventsFollowed("ses-1", "sub-7", 1, Channel.CreateUnbounded<SessionEvent>().Reader));
        var (next, _) = await seen.Reader.ReadAsync().AsTask().WaitAsync(Timeout);

        Assert.IsType<FollowEvents>(asked);
        Assert.Null(reply);
        Assert.NotNull(problem);
        Assert.Equal(new Unfollow("ses-1", "sub-7"), next);
    }

    [Fact]
    public async Task A_session_created_after_its_client_was_told_to_try_again_is_closed_and_one_looked_up_late_is_not()
    {
        var seen = Channel.CreateUnbounded<(object Message, IActorRef Sender)>();
        var gateway = _system.ActorOf(Props.Create(() => new Recorder(seen.Writer)));
        var context = new DefaultHttpContext();
        foreach (var (asked, id) in new (object, string)[] { (new GetSession("ses-8"), "ses-8"), (new CreateSession(SessionType.Full), "ses-9") })
        {
            var (reply, problem) = await GatewayEndpoints.AskAsync<SessionInfo>(context, gateway, asked, TimeSpan.FromMilliseconds(50));
            var (question, asker) = await seen.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
            Assert.Equal((asked, null), (question, reply));
            Assert.NotNull(problem);
            asker.Tell(new SessionInfo(id, SessionType.Full, null, "idle", null, 0, 0)); // the answer comes after all
        }

        // The creation's client was told 503 "try again": the session it made is closed, not left open with nobody knowing its id.
        // The look-up's answer (sent first) opened nothing.
        var (next, _) = await seen.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal(new CloseSession("ses-9"), next);
    }

    public void Dispose() => _system.Terminate().Wait(Timeout);

    private sealed class Recorder : ReceiveActor
    {
        public Recorder(ChannelWriter<(object, IActorRef)> seen) => ReceiveAny(m => seen.TryWrite((m, Sender)));
    }
}
