using System.Runtime.InteropServices;

namespace Konsole.Actors.Processes;

/// <summary>The few POSIX process facilities .NET does not expose: signals, process groups, process identity.</summary>
public static class Posix
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    /// <summary>
    /// <c>setsid</c> (util-linux) when present: run through it, a CLI leads a session and process group of its own,
    /// so a terminal's Ctrl+C does not reach it and a group signal reaches the tools it started.
    /// </summary>
    public static string? SetSid { get; } = OperatingSystem.IsLinux() ? Executables.Locate("setsid") : null;

    /// <summary>Sends <paramref name="signal"/> to a process, or to its whole process group.</summary>
    public static bool Signal(int pid, int signal, bool group) => IsPosix && kill(group ? -pid : pid, signal) == 0;

    /// <summary>Whether a process group <paramref name="pgid"/> has members (signal 0 to it, which tests without sending).</summary>
    public static bool GroupExists(int pgid) => Signal(pgid, 0, group: true);

    private static bool IsPosix => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    /// <summary>
    /// When the process started (clock ticks since boot, from /proc), which tells it from a later process that got its
    /// pid; null when it is gone or this is not Linux.
    /// </summary>
    public static string? StartTime(int pid) => StatFields(pid) is { Length: > 19 } fields ? fields[19] : null;

    /// <summary>
    /// The fields of <c>/proc/PID/stat</c> after the command's name: state, parent, process group, session, ... (the start
    /// time at index 19); null when the process is gone or this is not Linux.
    /// </summary>
    public static string[]? StatFields(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (which may hold spaces and parentheses) ends at the last closing parenthesis.
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Flushes a directory's entries to disk (<c>fsync</c> on the directory), so a file renamed into it stays renamed after a
    /// power loss; false when that failed or this is not Linux or macOS.
    /// </summary>
    public static bool SyncDirectory(string directory)
    {
        if (!IsPosix)
            return false;
        // O_RDONLY | O_CLOEXEC: a CLI forked meanwhile must not inherit it.
        var fd = open(directory, OperatingSystem.IsLinux() ? 0x80000 : 0x1000000);
        if (fd < 0)
            return false;
        var synced = fsync(fd) == 0;
        close(fd);
        return synced;
    }

    /// <summary>
    /// The path with every symbolic link in it resolved (<c>realpath</c>), so two names of one directory compare equal; the
    /// full path as given when it does not exist (yet) or this is not Linux or macOS.
    /// </summary>
    public static string RealPath(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (!IsPosix)
            return full;
        var resolved = realpath(full, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
            return full;
        try
        {
            return Marshal.PtrToStringUTF8(resolved) ?? full;
        }
        finally
        {
            free(resolved);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr pointer);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}

/// <summary>Finds programs as a shell would.</summary>
public static class Executables
{
    /// <summary>The full path of <paramref name="path"/> (a path, or a name looked up on PATH) if it is a file that can be run, or null.</summary>
    public static string? Locate(string path)
    {
        if (path.Contains(Path.DirectorySeparatorChar))
            return IsExecutable(path) ? Path.GetFullPath(path) : null;
        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, path))
            .FirstOrDefault(IsExecutable);
    }

    private const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private static bool IsExecutable(string file) =>
        File.Exists(file) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(file) & AnyExecute) != 0);
}
