using System.Globalization;
using System.Text.RegularExpressions;
using Akka.Actor;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Integration.Tests;

/// <summary>
/// <see cref="ProcessMarks"/> on the real CLI: its Bash tool (allowed without asking) detaches a command into a session
/// of its own, out of reach of the CLI's process group.
/// </summary>
[Collection(RealClaudeCollection.Name)]
public sealed class RealClaudeDetachedSpecs(ITestOutputHelper output, RealClaudeFixture cli) : KonsoleSpec(output, accounts: 1), IAsyncLifetime
{
    private static readonly TimeSpan Turn = TimeSpan.FromSeconds(60);

    // The shell that setsid starts writes its own pid and becomes the sleep; the tool answers once the pid is written.
    // In a subshell, so that the tool's shell reports no job ("[1]+ Done ...") in its output.
    private const string Detach =
        "(setsid sh -c 'echo $$ > sleep.pid; exec sleep 600' </dev/null >/dev/null 2>&1 &); until [ -s sleep.pid ]; do sleep 0.05; done; cat sleep.pid";

    private FakeMessagesApi _api = null!;

    public async Task InitializeAsync() => _api = await FakeMessagesApi.StartAsync();

    public async Task DisposeAsync() => await _api.DisposeAsync();

    [Fact]
    public async Task A_command_the_Bash_tool_detached_with_setsid_does_not_outlive_the_actor_system()
    {
        // Without it the CLI refuses the command ("A variable in this command can't be checked before it runs");
        // --dangerously-skip-permissions would be refused as root without IS_SANDBOX=1.
        var router = this.StartAccounts(Sandbox.Settings(cli.Path, FakeMessagesApi.CliEnvironment(_api.BaseUrl),
            """konsole.claude.extra-args = ["--allowedTools", "Bash"]"""));
        await this.WaitUntilWarmAsync(router, Turn);
        var cliPid = (await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(5)))
            .Accounts[0].Status.Processes.Single(p => p.Mode == ProcessMode.Full).ProcessId!.Value;
        var (prompt, caller) = NewPrompt($"[[api-bash:{Detach}]] detach a sleep");

        router.Tell(new RoutePrompt(Role.Dashboard, prompt));
        var turn = await caller.ReceiveTurnAsync(Turn);

        Assert.True(turn.Completed is { Result.IsError: false }, $"the turn failed: {turn.Failed}{turn.Completed?.Result.Raw}");
        var done = Regex.Match(turn.ResultText ?? "", @"^done: (\d+)$");
        Assert.True(done.Success, $"not the sleep's pid: {turn.ResultText}");
        var sleep = int.Parse(done.Groups[1].Value, CultureInfo.InvariantCulture);
        var sleepStarted = Posix.StartTime(sleep);
        try
        {
            Assert.True(ProcessTable.IsRunning(sleep));
            Assert.Equal(sleep, ProcessTable.SessionOf(sleep)); // out of the CLI's process group: the group's kill does not reach it
            Assert.NotNull(ProcessMarks.MarkOf(cliPid));
            Assert.Equal(ProcessMarks.MarkOf(cliPid), ProcessMarks.MarkOf(sleep));

            await Sys.Terminate();

            await AwaitConditionAsync(() => Task.FromResult(!ProcessTable.IsRunning(sleep)), Turn);
        }
        finally
        {
            if (Posix.StartTime(sleep) == sleepStarted)
                Posix.Signal(sleep, Posix.SigKill, group: false);
        }
    }
}
