using System.Globalization;
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
        return Posix.StatFields(pid) is { } stat && stat[0] is not ("Z" or "X");
    }

    /// <summary>The session the process leads or belongs to.</summary>
    public static int SessionOf(int pid) =>
        int.Parse(Posix.StatFields(pid)?[3] ?? throw new InvalidOperationException($"no process {pid}"), CultureInfo.InvariantCulture);
}
