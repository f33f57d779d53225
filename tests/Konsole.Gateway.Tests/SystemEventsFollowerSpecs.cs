using System.Threading.Channels;
using Akka.Actor;
using Konsole.Actors.Accounts;

namespace Konsole.Gateway.Tests;

/// <summary>A follower of the system's events, on an actor system of its own.</summary>
public sealed class SystemEventsFollowerSpecs : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("system-events-follower-specs", "akka.loglevel = WARNING");

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _system.Terminate();

    [Fact]
    public async Task An_event_published_the_moment_the_follower_is_started_is_not_missed()
    {
        // /api/events answers its client once the follower is started; what happens from then on must reach that client.
        for (var n = 0; n < 50; n++)
        {
            var channel = Channel.CreateUnbounded<object>();
            SystemEventsActor.Start(_system, _system.EventStream, channel.Writer, $"follower-{n}");
            var published = new AccountProtocol.OAuthRefreshFailed("alpha", $"event {n}", Retryable: true);
            _system.EventStream.Publish(published);

            Assert.Equal(published, await channel.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }
}
