using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Konsole.Actors.Processes;
using Konsole.Testing;

namespace Konsole.Actors.Tests.Processes;

public sealed class OrphanReaperSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    // A tool's background command left in the CLI's process group.
    [Fact]
    public Task What_a_cli_that_exited_with_its_killed_host_left_running_in_its_process_group_is_ended_at_the_next_start() =>
        EndedAtTheNextStartAsync("sleep 600 </dev/null >/dev/null 2>&1 & echo $!; read line", mark: null);

    // A tool detaches a command (setsid) from a shell that exits at once: in no group of the CLI's, with init as its parent.
    [Fact]
    public Task What_a_cli_whose_host_was_killed_detached_into_a_session_of_its_own_is_ended_at_the_next_start() =>
        EndedAtTheNextStartAsync("sh -c 'setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!'; read line", ProcessMarks.NewMark()!);

    // Another actor system on the same data dir (a library user's, or a second host in one process): its CLIs are its own.
    [Fact]
    public async Task A_cli_whose_host_still_runs_is_left_alone_and_ended_once_that_host_is_gone()
    {
        var runDir = Directory.CreateTempSubdirectory("konsole-run-").FullName;
        using var host = Process.Start("sleep", "600");
        using var cli = Process.Start("sleep", "600");
        var record = Path.Combine(runDir, $"cli-{cli.Id}.json");
        try
        {
            File.WriteAllText(record, JsonSerializer.Serialize(new
            {
                Pid = cli.Id, Started = Posix.StartTime(cli.Id), Group = false, Mark = (string?)null,
                Host = host.Id, HostStarted = Posix.StartTime(host.Id),
            }));

            Assert.Empty(OrphanReaper.Reap(runDir));
            Assert.True(ProcessTable.IsRunning(cli.Id) && File.Exists(record)); // was killed: a live host's CLI taken for an orphan

            host.Kill();
            await host.WaitForExitAsync().WaitAsync(Timeout);
            Assert.Equal([cli.Id], OrphanReaper.Reap(runDir));
            await cli.WaitForExitAsync().WaitAsync(Timeout);
        }
        finally
        {
            foreach (var process in new[] { host, cli }.Where(p => !p.HasExited))
                process.Kill();
            Directory.Delete(runDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_cli_whose_host_has_exited_but_is_not_yet_reaped_is_ended()
    {
        var runDir = Directory.CreateTempSubdirectory("konsole-run-").FullName;
        // The host is a subshell that exits once told (a line on fd 3, its parent's stdin), after its parent became a sleep, which
        // never reaps it: a zombie, its /proc entry (start time and all) still there. (Exiting at once, the shell might reap it first.)
        using var parent = Process.Start(new ProcessStartInfo("sh", ["-c", "exec 3<&0; (read line <&3) & echo $!; exec sleep 600"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true,
        })!;
        var host = int.Parse((await parent.StandardOutput.ReadLineAsync())!, CultureInfo.InvariantCulture);
        using var cli = Process.Start("sleep", "600");
        try
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (File.ReadAllText($"/proc/{parent.Id}/comm").Trim() != "sleep" && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            await parent.StandardInput.WriteLineAsync("exit");
            await parent.StandardInput.FlushAsync();
            while (Posix.StatFields(host)?[0] != "Z" && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            Assert.Equal("Z", Posix.StatFields(host)?[0]);
            File.WriteAllText(Path.Combine(runDir, $"cli-{cli.Id}.json"), JsonSerializer.Serialize(new
            {
                Pid = cli.Id, Started = Posix.StartTime(cli.Id), Group = false, Mark = (string?)null,
                Host = host, HostStarted = Posix.StartTime(host),
            }));

            Assert.Equal([cli.Id], OrphanReaper.Reap(runDir)); // was left alone, as a live host's
            await cli.WaitForExitAsync().WaitAsync(Timeout);
        }
        finally
        {
            foreach (var process in new[] { parent, cli }.Where(p => !p.HasExited))
                process.Kill();
            Directory.Delete(runDir, recursive: true);
        }
    }

    // A hung CLI, left by its killed host, ends at the next start's SIGTERM; a command in its group ignores SIGTERM.
    [Fact]
    public Task A_command_in_a_cli_group_that_ignores_sigterm_is_killed_though_the_cli_ended_at_its_sigterm() =>
        EndedAtTheNextStartAsync("(trap '' TERM; exec sleep 600) </dev/null >/dev/null 2>&1 & echo $!; exec sleep 600", mark: null, cliRunsOn: true);

    /// <param name="script">The CLI: prints the pid of the command it leaves running, then reads stdin until it closes (or, with
    /// <paramref name="cliRunsOn"/>, runs on, as a hung CLI: the next start ends it).</param>
    private static async Task EndedAtTheNextStartAsync(string script, string? mark, bool cliRunsOn = false)
    {
        Assert.NotNull(Posix.SetSid);
        var runDir = Directory.CreateTempSubdirectory("konsole-run-").FullName;
        // As CliProcess starts a CLI (setsid: a session and process group of its own; its mark).
        var start = new ProcessStartInfo(Posix.SetSid!, ["sh", "-c", script]) { RedirectStandardInput = true, RedirectStandardOutput = true };
        if (mark is not null)
            start.Environment[ProcessMarks.Variable] = mark;
        using var cli = Process.Start(start)!;
        var tool = int.Parse((await cli.StandardOutput.ReadLineAsync())!, CultureInfo.InvariantCulture);
        var toolStarted = Posix.StartTime(tool);
        try
        {
            File.WriteAllText(Path.Combine(runDir, $"cli-{cli.Id}.json"), // the record the host keeps while the CLI runs
                JsonSerializer.Serialize(new { Pid = cli.Id, Started = Posix.StartTime(cli.Id), Group = true, Mark = mark }));
            if (!cliRunsOn)
            {
                cli.StandardInput.Close(); // the host is killed: the CLI exits as its stdin closes...
                await cli.WaitForExitAsync().WaitAsync(Timeout);
                Assert.True(ProcessTable.IsRunning(tool, toolStarted)); // ...and the command it left runs on
            }

            var ended = OrphanReaper.Reap(runDir); // the next host starts
            if (cliRunsOn)
            {
                Assert.Equal([cli.Id], ended);
                await cli.WaitForExitAsync().WaitAsync(Timeout);
            }

            var deadline = DateTime.UtcNow + Timeout;
            while (ProcessTable.IsRunning(tool, toolStarted) && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            Assert.False(ProcessTable.IsRunning(tool, toolStarted), $"pid {tool}, left by the CLI {cli.Id}, outlived the next start");
        }
        finally
        {
            if (ProcessTable.IsRunning(tool, toolStarted))
                Posix.Signal(tool, Posix.SigKill, group: false);
            if (!cli.HasExited)
                cli.Kill();
            Directory.Delete(runDir, recursive: true);
        }
    }
}
