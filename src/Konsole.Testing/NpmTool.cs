using System.Collections.Concurrent;
using System.Text.Json;

namespace Konsole.Testing;

/// <summary>
/// A program from one pinned npm package, installed with <c>npm install --prefix &lt;directory&gt; Package@Version</c> into a
/// directory of its own when missing, of another version, or not answering <c>--version</c> there.
/// </summary>
/// <param name="Program">The program's path in the directory, e.g. <c>node_modules/.bin/claude</c>.</param>
/// <param name="Answers">What its <c>--version</c> prints when it is the pinned one.</param>
public sealed record NpmTool(string Package, string Version, string Program, string Answers)
{
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan LockTimeout = NpmTimeout + TimeSpan.FromMinutes(5); // another process's install, and its check
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> InProcess = new(StringComparer.Ordinal); // per install directory

    /// <summary>
    /// Returns the program's full path in <paramref name="directory"/>, installing the package first when it is needed. An
    /// install counts once the program's <c>--version</c> has answered: a marker file (<c>.verified</c>) records that, so an
    /// install another process is still running, or one cut short, is never handed out. Safe when several processes call it at
    /// once (an exclusive lock file around the check and the install). Throws <see cref="InvalidOperationException"/> with
    /// npm's output when npm fails or is missing, and <see cref="TimeoutException"/> when the lock stays out of reach.
    /// </summary>
    public async Task<string> EnsureInstalledAsync(string directory, CancellationToken ct = default)
    {
        var dir = Path.GetFullPath(directory);
        var program = Path.Combine(dir, Program);
        var marker = Path.Combine(dir, ".verified");
        bool Ready() => IsVerified(marker) && IsInstalled(dir, program);
        if (Ready())
            return program;

        var gate = InProcess.GetOrAdd(dir, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            Directory.CreateDirectory(dir);
            await using var installLock = await LockAsync(Path.Combine(dir, ".install.lock"), ct);
            if (Ready()) // another process installed it while we waited
                return program;
            // One installed without this method (by hand, or CI's own npm install) or cut short counts if it answers.
            if (!IsInstalled(dir, program) || await WrongVersionAsync(program, dir, ct) is not null)
            {
                File.Delete(marker);
                // A half-done or other-version install may look current to npm (its lock file): start clean.
                var modules = Path.Combine(dir, "node_modules");
                if (Directory.Exists(modules))
                    Directory.Delete(modules, recursive: true);
                File.Delete(Path.Combine(dir, "package-lock.json"));
                await NpmAsync(["install", "--prefix", dir, "--no-audit", "--no-fund", $"{Package}@{Version}"], dir, ct);
                if (!IsInstalled(dir, program))
                    throw new InvalidOperationException($"npm installed {Package}@{Version} into {dir}, but {program} or its package.json is missing.");
                // A package's postinstall may put its program in place (the CLI's native binary); without it a stub runs, or nothing.
                if (await WrongVersionAsync(program, dir, ct) is { } wrong)
                    throw new InvalidOperationException($"{program} --version {wrong}");
            }
            await File.WriteAllTextAsync(marker, Version, ct);
            return program;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Where a tool the tests install goes: &lt;repo root&gt;/.tools/<paramref name="name"/> in this repository's checkout; elsewhere
    /// (a library user's tests) a directory per version under ~/.cache/konsole/tools, so projects pinning other versions do not
    /// install over one another.
    /// </summary>
    public static string DirectoryFor(string name, string version)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Konsole.Actors.sln")))
                return Path.Combine(dir.FullName, ".tools", name);
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "konsole", "tools", $"{name}-{version}");
    }

    private bool IsVerified(string marker)
    {
        try
        {
            return File.Exists(marker) && File.ReadAllText(marker).Trim() == Version;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Null when <c>program --version</c> answers the pinned version; else what it did instead.</summary>
    private async Task<string?> WrongVersionAsync(string program, string dir, CancellationToken ct)
    {
        try
        {
            var run = await ProgramRun.RunAsync(program, ["--version"], dir, TimeSpan.FromMinutes(1), "", ct);
            var said = (run.Output + run.Errors).Trim();
            return run.ExitCode == 0 && said.Contains(Answers, StringComparison.Ordinal) ? null
                : $"answered '{said}' (exit {run.ExitCode}), not {Answers}.";
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            return $"did not answer: {e.Message}";
        }
    }

    private bool IsInstalled(string dir, string program)
    {
        var manifest = Path.Combine(dir, "node_modules", Package, "package.json");
        if (!File.Exists(program) || !File.Exists(manifest))
            return false;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(manifest));
            return json.RootElement.TryGetProperty("version", out var version) && version.ValueKind == JsonValueKind.String
                && version.GetString() == Version;
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return false;
        }
    }

    /// <summary>An exclusive lock (flock on Unix) held while the returned stream is open; waited for up to <see cref="LockTimeout"/>.</summary>
    private static async Task<FileStream> LockAsync(string path, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + LockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) // held by another process, or a file system that takes no lock file (read-only): not for ever
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"{path} could not be taken within {LockTimeout.TotalMinutes:0} minutes: {e.Message}", e);
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            }
        }
    }

    /// <summary>Runs npm to its end; throws with its output when it cannot start, fails or takes too long.</summary>
    private async Task NpmAsync(string[] args, string workingDirectory, CancellationToken ct)
    {
        var run = await ProgramRun.RunAsync("npm", args, workingDirectory, NpmTimeout, $"Installing {Package}@{Version} needs Node.js and npm on PATH.", ct);
        if (run.ExitCode != 0)
            throw new InvalidOperationException($"`npm {string.Join(' ', args)}` exited with {run.ExitCode}:\n{run.Output}{run.Errors}");
    }
}
