using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Konsole.Actors.Processes;

namespace Konsole.Actors.Tests.Processes;

public sealed class OrphanReaperSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task What_a_cli_that_exited_with_its_killed_host_left_running_in_its_process_group_is_ended_at_the_next_start()
    {
        Assert.NotNull(Posix.SetSid);
        var runDir = Directory.CreateTempSubdirectory("konsole-run-").FullName;
        // As CliProcess starts a CLI (setsid: a session and process group of its own), with a tool's background command in it.
        var cli = Process.Start(new ProcessStartInfo(Posix.SetSid!, ["sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!; read line"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        })!;
        var tool = int.Parse((await cli.StandardOutput.ReadLineAsync())!, CultureInfo.InvariantCulture);
        var toolStarted = Posix.StartTime(tool);
        try
        {
            File.WriteAllText(Path.Combine(runDir, $"cli-{cli.Id}.json"), // the record the host keeps while the CLI runs
                JsonSerializer.Serialize(new { Pid = cli.Id, Started = Posix.StartTime(cli.Id), Group = true }));
            cli.StandardInput.Close(); // the host is killed: the CLI exits as its stdin closes...
            await cli.WaitForExitAsync().WaitAsync(Timeout);
            Assert.True(Running(tool, toolStarted)); // ...and the background command runs on

            OrphanReaper.Reap(runDir); // the next host starts

            var deadline = DateTime.UtcNow + Timeout;
            while (Running(tool, toolStarted) && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            Assert.False(Running(tool, toolStarted), $"pid {tool}, left in the exited CLI's process group {cli.Id}, outlived the next start");
        }
        finally
        {
            if (Running(tool, toolStarted))
                Posix.Signal(tool, Posix.SigKill, group: false);
            Directory.Delete(runDir, recursive: true);
        }
    }

    [Fact]
    public async Task What_a_cli_whose_host_was_killed_detached_into_a_session_of_its_own_is_ended_at_the_next_start()
    {
        Assert.NotNull(Posix.SetSid);
        var runDir = Directory.CreateTempSubdirectory("konsole-run-").FullName;
        var mark = ProcessMarks.NewMark()!;
        // A CLI as CliProcess starts it, with its mark; a tool detaches a command (setsid) from a shell that exits at once.
        var cli = Process.Start(new ProcessStartInfo(Posix.SetSid!,
            ["sh", "-c", "sh -c 'setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!'; read line"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            Environment = { [ProcessMarks.Variable] = mark },
        })!;
        var tool = int.Parse((await cli.StandardOutput.ReadLineAsync())!, CultureInfo.InvariantCulture);
        var toolStarted = Posix.StartTime(tool);
        try
        {
            File.WriteAllText(Path.Combine(runDir, $"cli-{cli.Id}.json"),
                JsonSerializer.Serialize(new { Pid = cli.Id, Started = Posix.StartTime(cli.Id), Group = true, Mark = mark }));
            cli.StandardInput.Close(); // the host is killed, the CLI exits...
            await cli.WaitForExitAsync().WaitAsync(Timeout);
            Assert.True(Running(tool, toolStarted)); // ...and the detached command, in no group of the CLI's, runs on

            OrphanReaper.Reap(runDir);

            var deadline = DateTime.UtcNow + Timeout;
            while (Running(tool, toolStarted) && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            Assert.False(Running(tool, toolStarted), $"pid {tool}, detached by the exited CLI {cli.Id}, outlived the next start");
        }
        finally
        {
            if (Running(tool, toolStarted))
                Posix.Signal(tool, Posix.SigKill, group: false);
            Directory.Delete(runDir, recursive: true);
        }
    }

    /// <summary>The process seen before (not a later one with its pid), and not a zombie.</summary>
    private static bool Running(int pid, string? started)
    {
        if (Posix.StartTime(pid) != started)
            return false;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
