using Konsole.Actors.Processes;

namespace Konsole.Actors.Tests.Processes;

/// <summary>How a CLI is stopped: its input closed, then SIGTERM, then SIGKILL to its process group, each only if the one before did not end it.</summary>
public sealed class CliProcessSpecs : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("konsole-stop-").FullName;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_cli_deaf_to_the_end_of_its_input_gets_sigterm_and_one_deaf_to_that_too_is_killed_with_its_group(bool endsAtSigterm)
    {
        Assert.NotNull(Posix.SetSid); // its own process group, as every CLI has here
        var termed = Path.Combine(_dir, "termed");
        // Reads nothing (its input's end goes unseen); a command of its group runs beside it.
        var script = $"sleep 600 & trap 'touch \"{termed}\"{(endsAtSigterm ? "; exit 0" : "")}' TERM; while :; do sleep 0.1; done";
        var cli = CliProcess.Start(new ProcessLaunch("sh", ["-c", script], new Dictionary<string, string?>(), _dir, 1 << 20),
            _ => { }, _ => { }, _ => { });

        await cli.StopAsync(TimeSpan.FromMilliseconds(300)).WaitAsync(Timeout);

        Assert.True(cli.HasExited);
        Assert.True(File.Exists(termed), "no SIGTERM reached it after its input closed");
        Assert.Equal(endsAtSigterm ? 0 : 137, await cli.Exited); // 137: SIGKILL
        await GroupGoneAsync(cli, "a command of its group outlived it");
    }

    [Fact]
    public async Task A_cli_that_exits_while_an_escaped_command_holds_its_stderr_is_reported_with_its_own_exit_code()
    {
        // The command escapes the group (a session of its own) and the mark (no environment), and keeps the CLI's stderr: its
        // pipes are given up 5 s after the CLI's exit.
        var pidFile = Path.Combine(_dir, "escaped.pid");
        var cli = CliProcess.Start(new ProcessLaunch("sh", ["-c", $"setsid env -i sleep 60 </dev/null >/dev/null & echo $! > \"{pidFile}\"; exit 3"],
            new Dictionary<string, string?>(), _dir, 1 << 20), _ => { }, _ => { }, _ => { });
        try
        {
            Assert.Equal(3, await cli.Exited.WaitAsync(Timeout)); // was 137, as if it had been killed
        }
        finally
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile), out var escaped))
                Posix.Signal(escaped, Posix.SigKill, group: false);
        }
    }

    [Fact]
    public async Task A_cli_that_exits_while_a_command_of_its_group_holds_its_stdout_is_seen_to_exit_and_the_command_is_ended()
    {
        var cli = CliProcess.Start(new ProcessLaunch("sh", ["-c", "sleep 600 & exit 3"], new Dictionary<string, string?>(), _dir, 1 << 20),
            _ => { }, _ => { }, _ => { });

        Assert.Equal(3, await cli.Exited.WaitAsync(Timeout)); // was: not before the sleep ended, its stdout held open
        await GroupGoneAsync(cli, "the command holding its stdout outlived it");
    }

    /// <summary>Signalled, its group is gone once the kernel has ended its members and their new parent has reaped them.</summary>
    private static async Task GroupGoneAsync(CliProcess cli, string otherwise)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (Posix.GroupExists(cli.ProcessId))
        {
            Assert.True(DateTime.UtcNow < deadline, otherwise);
            await Task.Delay(20);
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
