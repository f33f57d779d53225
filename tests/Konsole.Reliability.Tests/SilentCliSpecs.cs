using System.Diagnostics;
using Akka.Actor;
using Konsole.Actors.Accounts;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Reliability.Tests;

/// <summary>Fault 2: a CLI that goes silent mid-turn, deaf to interrupts (hung) or not (stuck in a long wait).</summary>
public sealed class SilentCliSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 1)
{
    [Fact]
    public async Task The_watchdog_ends_a_silent_turn_with_turn_timeout_and_the_account_recovers()
    {
        var restarts = EventsOf(typeof(AccountProtocol.ProcessRestarted));
        var router = this.StartAccounts(Sandbox.Settings(FakeClaudeCli.Path,
            extraHocon: "konsole.claude { turn-timeout = 3s, interrupt-timeout = 1s }"));
        await this.WaitUntilWarmAsync(router);

        var (waiting, waitingTook) = await RouteAsync(router, "[[delay:600000]] waits on something");
        var (hung, hungTook) = await RouteAsync(router, "[[hang]] hung for good");
        var restarted = await restarts.ExpectMsgAsync<AccountProtocol.ProcessRestarted>(TurnTimeout);
        var (next, nextTook) = await RouteAsync(router, "after both");

        Assert.Equal(TurnErrorCodes.TurnTimeout, waiting.Failed?.Code); // interrupted: the process lived on
        Assert.Equal(TurnErrorCodes.TurnTimeout, hung.Failed?.Code); // killed: the process was restarted
        Assert.Contains("killed by the watchdog", restarted.Reason);
        Assert.StartsWith("echo: after both", next.ResultText);
        Output.WriteLine($"FIGURES silent CLI (turn-timeout 3s, interrupt-timeout 1s): interruptible silence ended in {waitingTook.TotalSeconds:0.00}s " +
            $"(interrupt), hung CLI ended in {hungTook.TotalSeconds:0.00}s (interrupt unanswered, kill), next prompt served {nextTook.TotalSeconds:0.00}s later " +
            $"after a restart {restarted.Delay.TotalMilliseconds:0}ms into the backoff");
    }

    private async Task<(TurnRecord Turn, TimeSpan Took)> RouteAsync(IActorRef router, string text)
    {
        var clock = Stopwatch.StartNew();
        var (prompt, caller) = NewPrompt(text);
        router.Tell(new RoutePrompt(Role.Dashboard, prompt));
        return (await caller.ReceiveTurnAsync(TurnTimeout), clock.Elapsed);
    }
}
