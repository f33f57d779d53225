using System.Diagnostics;
using Akka.Actor;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Reliability.Tests;

/// <summary>
/// Fault 3: a CLI printing 10^5 hostile stdout lines (not JSON, invalid UTF-8, truncated JSON, untyped, unknown types)
/// and 8 MB lines, within the line cap and over it.
/// </summary>
public sealed class HostileOutputSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 2)
{
    [Fact]
    public async Task A_hundred_thousand_hostile_lines_and_8_MB_lines_crash_nothing_and_every_turn_ends()
    {
        var router = this.StartAccounts(Sandbox.Settings(FakeClaudeCli.Path)); // lines up to 64 MiB (konsole.claude.max-line-bytes)
        await this.WaitUntilWarmAsync(router);
        var before = Process.GetCurrentProcess().WorkingSet64;
        var clock = Stopwatch.StartNew();

        var flood = await RouteAsync(router, Role.Dashboard, "[[garbage:100000]] [[huge:8388608]] survived");
        var floodSeconds = clock.Elapsed.TotalSeconds;
        var huge = await RouteAsync(router, Role.Dashboard, "[[huge:8388608]] again");
        var dropped = await RouteAsync(router, Role.QuickTurn, "[[garbage:1000]] [[huge:70000000]] over the cap");
        var after = await RouteAsync(router, Role.Dashboard, "still here");

        Assert.Equal("echo: survived", flood.ResultText);
        // (Plain Asserts: a collection holding 8 MB lines must not end up in a failure message.)
        Assert.True(flood.Outputs.Single(o => o.Frame.Type == "assistant").Frame.Raw.Length > 8_388_608);
        Assert.True(flood.Outputs.Any(o => o.Frame.Type == "mystery_frame"), "unknown types pass through");
        Assert.True(flood.Outputs.All(o => o.Frame.Raw.StartsWith('{')), "only JSON objects pass through");
        Assert.True(huge.Outputs.Single(o => o.Frame.Type == "assistant").Frame.Raw.Length > 8_388_608);
        Assert.Equal("echo: over the cap", dropped.ResultText);
        Assert.False(dropped.Outputs.Any(o => o.Frame.Type == "assistant"), "the 70 MB line over the 64 MiB cap is dropped");
        Assert.Equal("assistant", Assert.Single(dropped.Dropped).Type); // and its caller told so
        Assert.StartsWith("echo: still here", after.ResultText);
        var status = await router.Ask<AccountsView>(GetAccounts.Instance, TurnTimeout);
        Assert.All(status.Accounts, a => Assert.All(a.Status.Processes, p => Assert.Equal(0, p.Restarts))); // no process died
        Output.WriteLine($"FIGURES hostile output: 100,000 hostile lines + one 8 MB line read in {floodSeconds:0.00}s " +
            $"({100_000 / floodSeconds:N0} lines/s), {flood.Outputs.Count:N0} JSON frames passed on, another 8 MB line passed whole, a 70 MB line over the 64 MiB cap dropped, " +
            $"0 process restarts, working set {before / 1048576} -> {Process.GetCurrentProcess().WorkingSet64 / 1048576} MB");
    }

    private async Task<TurnRecord> RouteAsync(IActorRef router, Role role, string text)
    {
        var (prompt, caller) = NewPrompt(text);
        router.Tell(new RoutePrompt(role, prompt));
        var turn = await caller.ReceiveTurnAsync(TimeSpan.FromSeconds(120));
        Assert.True(turn.Completed is not null, $"{text}: {turn.Failed}");
        return turn;
    }
}
