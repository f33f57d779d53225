using System.Globalization;
using System.Text;
using Konsole.Actors.Processes;

namespace Konsole.Testing;

/// <summary>What <c>/proc</c> says of a process, for tests that check what a CLI left behind (Linux).</summary>
public static class ProcessTable
{
    /// <summary>
    /// The process exists and is not a zombie waiting for its (new) parent to reap it; with <paramref name="started"/>
    /// (<see cref="Posix.StartTime"/>), it is also that process and not a later one that got its pid.
    /// </summary>
    public static bool IsRunning(int pid, string? started = null)
    {
        if (started is not null && Posix.StartTime(pid) != started)
            return false;
        return Stat(pid) is { } stat && stat[0] is not ("Z" or "X");
    }

    /// <summary>The session the process leads or belongs to.</summary>
    public static int SessionOf(int pid) =>
        int.Parse(Stat(pid)?[3] ?? throw new InvalidOperationException($"no process {pid}"), CultureInfo.InvariantCulture);

    /// <summary>The process's <see cref="ProcessMarks.Variable"/> entry (<c>NAME=mark</c>), or null.</summary>
    public static string? MarkOf(int pid) => Encoding.UTF8.GetString(File.ReadAllBytes($"/proc/{pid}/environ")).Split('\0')
        .FirstOrDefault(v => v.StartsWith(ProcessMarks.Variable + "=", StringComparison.Ordinal));

    /// <summary>The fields of <c>/proc/PID/stat</c> after the command's name (which may hold spaces): state, parent, group, session, ...</summary>
    private static string[]? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
    }
}
