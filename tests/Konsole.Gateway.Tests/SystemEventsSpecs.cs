using Akka.Actor;
using Konsole.Actors.Accounts;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>/api/events: what it reports of accounts and processes, and a client that reads too slowly.</summary>
public sealed class SystemEventsSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    [Fact]
    public async Task A_crashed_cli_is_reported_as_process_restarted_and_its_accounts_states_as_they_change()
    {
        await using var events = await GetEventsAsync("/api/events");

        var crashed = await RunAsync("/sessions/ui-1/hot-prompt", "[[crash]] mid-turn");

        Assert.Equal(("error", "process_crashed"), (crashed[^1].Event, Field(crashed[^1], "code")));
        var states = new List<string>();
        SseEvent? restarted = null;
        while (restarted is null || states[^1] != "restarting -> idle")
        {
            var e = await events.NextAsync(Timeout) ?? throw new InvalidOperationException("/api/events ended");
            Assert.Equal(e.Event, Field(e, "kind"));
            if (e.Event == "process.restarted")
                restarted = e;
            else if (e.Event == "account.state" && Field(e, "accountId") == "alpha")
                states.Add($"{Field(e, "previous")} -> {Field(e, "state")}");
        }
        Assert.Equal(("alpha", "full", "1"), (Field(restarted, "accountId"), Field(restarted, "mode"), Field(restarted, "attempt")));
        Assert.Contains("exited", Field(restarted, "reason"));
        Assert.Equal(["idle -> busy", "busy -> restarting", "restarting -> idle"], states);
    }

    [Fact]
    public async Task A_follower_that_falls_too_far_behind_gets_what_was_kept_for_it_then_too_slow_and_a_clean_end()
    {
        await using var events = await SseStream.OpenAsync(Client, new HttpRequestMessage(HttpMethod.Get, "/api/events"), Timeout, keep: false);
        var follower = await Host.System.ActorSelection("/user/gateway/events-1").ResolveOne(Timeout);
        var ended = follower.WatchAsync();
        // The client reads nothing: large events fill the connection's buffers (however large they are), then the
        // follower's own fill up. Each round waits until the follower has taken it (or has ended).
        var large = new AccountProtocol.OAuthRefreshFailed("alpha", new string('x', 1 << 20), Retryable: true);
        var small = new AccountProtocol.OAuthRefreshFailed("alpha", "small", Retryable: true);
        var deadline = DateTime.UtcNow + Timeout;
        while (!ended.IsCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the follower never fell behind");
            for (var i = 0; i < 4; i++)
                Host.System.EventStream.Publish(large);
            for (var i = 0; i <= SystemEventsActor.Capacity; i++)
                Host.System.EventStream.Publish(small);
            await Task.WhenAny(ended, follower.Ask<ActorIdentity>(new Identify(null), Timeout));
        }

        var count = 0;
        SseEvent? last = null;
        while (await events.NextAsync(Timeout) is { } e) // the server ends the stream: no reset, no timeout
        {
            Assert.Equal((++count).ToString(), e.Id);
            if (last is not null)
                Assert.Equal("oauth.refresh-failed", last.Event);
            last = e;
        }

        Assert.True(count > SystemEventsActor.Capacity, $"{count} events"); // every event kept for it came first
        Assert.Equal(("error", "error", GatewayEndpoints.TooSlow), (last!.Event, Field(last, "kind"), Field(last, "code")));
        Assert.Contains("follow /api/events again", Field(last, "message"));
    }
}
