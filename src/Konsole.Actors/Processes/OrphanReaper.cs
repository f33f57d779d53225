using System.Text.Json;

namespace Konsole.Actors.Processes;

/// <summary>
/// CLI processes a previous host left behind when it was killed outright (SIGKILL, a crash): each live process has a
/// record (pid, start time, process group) in the run directory, removed when it exits. At the next start the
/// records still there name processes to end; the start time tells a survivor from an unrelated process that got
/// the same pid later. (A CLI whose host died usually exits by itself, as its stdin closed; a hung one does not; and what
/// its tools started in its process group, such as a background command, runs on after it: that group is ended too, as is
/// what it started outside its group, by its mark (<see cref="ProcessMarks"/>).) A record also names the host that wrote it:
/// one whose host still runs (another actor system on the same data dir, in this process or another) is left alone.
/// </summary>
public static class OrphanReaper
{
    private static readonly TimeSpan TermGrace = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Writes the record of <paramref name="process"/>; returns its path, or null where processes cannot be told apart (not Linux)
    /// or the record cannot be written (the run dir was removed): records only serve to end orphans after a crash of the host.
    /// </summary>
    public static string? Record(string runDir, CliProcess process)
    {
        if (Posix.StartTime(process.ProcessId) is not { } started)
            return null;
        // Its start time in the name too: a CLI started on the pid of one that just exited has a record of its own, which that
        // one's Forget does not delete.
        var path = Path.Combine(runDir, $"cli-{process.ProcessId}-{started}.json");
        try
        {
            File.WriteAllText(path, JsonSerializer.Serialize(
                new PidRecord(process.ProcessId, started, process.OwnGroup, process.Mark, Environment.ProcessId, Self.Value)));
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Removes the record of a process that has exited, if it can.</summary>
    public static void Forget(string record)
    {
        try
        {
            File.Delete(record);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // the run dir went away: nothing is left to reap from it
        }
    }

    /// <summary>
    /// Ends the processes the records in <paramref name="runDir"/> name, with their process groups (SIGTERM, then SIGKILL) and
    /// what they started elsewhere (SIGKILL), removes the records, and returns the pids of the CLIs still running.
    /// </summary>
    public static IReadOnlyList<int> Reap(string runDir)
    {
        var ended = new List<int>();
        if (!Directory.Exists(runDir))
            return ended;
        var survivors = new List<PidRecord>();
        var leftGroups = new List<int>();
        var marks = new HashSet<string>();
        foreach (var file in Directory.EnumerateFiles(runDir, "cli-*.json"))
        {
            try
            {
                if (JsonSerializer.Deserialize<PidRecord>(File.ReadAllText(file)) is { } record)
                {
                    // Its host runs (not a zombie its parent has yet to reap: that one has exited): the process is that host's to stop.
                    if (record.Host is { } host && Posix.StatFields(host) is { Length: > 19 } hostStat && hostStat[19] == record.HostStarted
                        && hostStat[0] != "Z")
                        continue;

                    if (record.Mark is { } mark)
                        marks.Add(mark);
                    var started = Posix.StartTime(record.Pid);
                    if (started == record.Started)
                        survivors.Add(record);
                    // The CLI is gone, and no process has its pid: Linux keeps a pid from reuse while a process group of that
                    // number has members, so a group of it is still the CLI's.
                    else if (started is null && record.Group && Posix.GroupExists(record.Pid))
                        leftGroups.Add(record.Pid);
                }
            }
            catch (JsonException)
            {
                // a record half-written when the host died: its process, if any, exits with its closed stdin
            }
            catch (IOException)
            {
                // gone meanwhile: its process exited
            }
            File.Delete(file);
        }
        foreach (var record in survivors)
            Posix.Signal(record.Pid, Posix.SigTerm, record.Group);
        foreach (var group in leftGroups)
            Posix.Signal(group, Posix.SigTerm, group: true);
        // A surviving CLI's group outlives it when a command in it ignores SIGTERM: it is killed whether or not the CLI ended.
        var groups = leftGroups.Concat(survivors.Where(r => r.Group).Select(r => r.Pid)).ToList();
        var deadline = DateTime.UtcNow + TermGrace;
        while ((survivors.Any(IsAlive) || groups.Any(Posix.GroupExists)) && DateTime.UtcNow < deadline)
            Thread.Sleep(50); // start-up, before any actor runs: nothing else to do meanwhile
        foreach (var record in survivors.Where(r => !r.Group && IsAlive(r)))
            Posix.Signal(record.Pid, Posix.SigKill, group: false);
        foreach (var group in groups.Where(Posix.GroupExists))
            Posix.Signal(group, Posix.SigKill, group: true);
        ProcessMarks.Kill(marks);
        ended.AddRange(survivors.Select(r => r.Pid));
        return ended;
    }

    private static bool IsAlive(PidRecord record) => Posix.StartTime(record.Pid) == record.Started;

    private static readonly Lazy<string?> Self = new(() => Posix.StartTime(Environment.ProcessId));

    /// <param name="Host">The process of the host that started it, and <paramref name="HostStarted"/> its start time.</param>
    private sealed record PidRecord(int Pid, string Started, bool Group, string? Mark = null, int? Host = null, string? HostStarted = null);
}
