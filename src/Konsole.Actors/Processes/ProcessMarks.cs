using System.Globalization;
using System.Text;

namespace Konsole.Actors.Processes;

/// <summary>
/// Follows what a CLI started wherever it went. A process group holds only what stays in it: a tool can start a command
/// in a session of its own (<c>setsid</c>, a daemon), and once its parent exits its parent pid is init's. Each CLI is
/// started with a mark of its own in its environment (<see cref="Variable"/>), which whatever it starts inherits, in
/// any group or session, under any parent; a process started by a marked one counts too (by parent pid, while that one
/// lives), so a command run with a scrubbed environment is followed as long as its parent is. Linux only (<c>/proc</c>);
/// elsewhere nothing is found.
/// </summary>
public static class ProcessMarks
{
    public const string Variable = "KONSOLE_CLI_MARK";

    private static readonly byte[] Prefix = Encoding.ASCII.GetBytes(Variable + "=");

    /// <summary>A mark for a CLI about to start, or null where marks cannot be followed (not Linux).</summary>
    public static string? NewMark() => OperatingSystem.IsLinux() ? Guid.NewGuid().ToString("N") : null;

    /// <summary>
    /// SIGKILLs every process bearing one of <paramref name="marks"/>, every process they started, and their process
    /// groups (never this host or its group), all found before any is killed; returns how many processes it found.
    /// </summary>
    public static int Kill(IReadOnlySet<string> marks)
    {
        if (!OperatingSystem.IsLinux() || marks.Count == 0)
            return 0;
        var (found, spared) = Find(marks);
        foreach (var process in found)
        {
            if (Posix.StartTime(process.Pid) == process.Started) // not a later process that got its pid meanwhile
                Posix.Signal(process.Pid, Posix.SigKill, group: false);
        }
        var sparedGroups = spared.Select(p => p.Group).ToHashSet();
        foreach (var group in found.Select(p => p.Group).Where(g => !sparedGroups.Contains(g) && g > 1).Distinct())
            Posix.Signal(group, Posix.SigKill, group: true);
        return found.Count;
    }

    private static readonly Lock Gate = new();
    private static Dictionary<string, TaskCompletionSource>? _queued; // guarded by Gate, as is _sweeping
    private static bool _sweeping;

    /// <summary>
    /// <see cref="Kill"/> for one mark on the thread pool. Reading <c>/proc</c> costs a read of every process on the machine, so the
    /// marks asked for while a sweep runs (hundreds of CLIs ending at shutdown) share the next one.
    /// </summary>
    public static Task KillAsync(string? mark)
    {
        if (mark is null || !OperatingSystem.IsLinux())
            return Task.CompletedTask;
        lock (Gate)
        {
            _queued ??= [];
            if (!_queued.TryGetValue(mark, out var swept))
                _queued[mark] = swept = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_sweeping)
            {
                _sweeping = true;
                _ = Task.Run(Sweep);
            }
            return swept.Task;
        }
    }

    private static void Sweep()
    {
        while (true)
        {
            Dictionary<string, TaskCompletionSource> batch;
            lock (Gate)
            {
                if (_queued is null)
                {
                    _sweeping = false;
                    return;
                }
                batch = _queued;
                _queued = null;
            }
            try
            {
                Kill(batch.Keys.ToHashSet());
            }
            catch (Exception)
            {
                // best effort, as the group's kill: a sweep that failed must not hold up the exits waiting for it, nor stop later ones
            }
            finally
            {
                foreach (var swept in batch.Values)
                    swept.TrySetResult();
            }
        }
    }

    /// <returns>
    /// The processes to kill, and those spared: this host and its ancestors, which carry a mark when a CLI started the host
    /// (a recorded mark of an earlier run then names them too).
    /// </returns>
    private static (List<Proc> Found, List<Proc> Spared) Find(IReadOnlySet<string> marks)
    {
        var all = new Dictionary<int, Proc>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Read(pid) is { } process)
                all[pid] = process;
        }
        var spared = new List<Proc>();
        for (var pid = Environment.ProcessId; all.TryGetValue(pid, out var ancestor) && spared.Count < all.Count; pid = ancestor.Parent)
            spared.Add(ancestor);
        var children = all.Values.ToLookup(p => p.Parent);
        var found = new Dictionary<int, Proc>();
        // The start time again after the mark: the environment read is that process's, not a later one's with its pid.
        var next = new Stack<Proc>(all.Values.Where(p => MarkOf(p.Pid) is { } mark && marks.Contains(mark) && Posix.StartTime(p.Pid) == p.Started));
        while (next.TryPop(out var process))
        {
            if (!spared.Contains(process) && found.TryAdd(process.Pid, process))
            {
                foreach (var child in children[process.Pid])
                    next.Push(child);
            }
        }
        return ([.. found.Values], spared);
    }

    private static Proc? Read(int pid) =>
        // A zombie is dead already, its mark kept only until it is reaped.
        Posix.StatFields(pid) is { Length: > 19 } fields && fields[0] is not ("Z" or "X")
            && int.TryParse(fields[1], CultureInfo.InvariantCulture, out var parent) && int.TryParse(fields[2], CultureInfo.InvariantCulture, out var group)
            ? new Proc(pid, parent, group, fields[19])
            : null;

    /// <summary>The mark in the process's environment; null when it has none, is gone, or is another user's.</summary>
    public static string? MarkOf(int pid)
    {
        byte[] environ;
        try
        {
            environ = File.ReadAllBytes($"/proc/{pid}/environ");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // gone, or another user's
        }
        foreach (var range in ((ReadOnlySpan<byte>)environ).Split((byte)0))
        {
            var entry = environ.AsSpan(range);
            if (entry.StartsWith(Prefix))
                return Encoding.ASCII.GetString(entry[Prefix.Length..]);
        }
        return null;
    }

    private sealed record Proc(int Pid, int Parent, int Group, string Started);
}
