using System.Collections.Concurrent;
using System.Text.Json;

namespace Konsole.Testing;

/// <summary>The real Claude Code CLI the integration tests run: one pinned version, installed with npm on first use.</summary>
public static class PinnedClaudeCli
{
    public const string Package = "@anthropic-ai/claude-code";
    public const string Version = "2.1.328";

    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(10);
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> InProcess = new(StringComparer.Ordinal); // per install directory

    /// <summary>
    /// Returns the full path of the pinned CLI. KONSOLE_CLAUDE_CLI (env) wins if set; else the CLI installed in
    /// &lt;repo root&gt;/.tools/claude (repo root = the first parent of AppContext.BaseDirectory holding
    /// Konsole.Actors.sln; fallback ~/.cache/konsole/tools/claude), as <see cref="EnsureInstalledAsync(string, CancellationToken)"/> does.
    /// </summary>
    public static Task<string> EnsureInstalledAsync(CancellationToken ct = default)
    {
        var overridden = Environment.GetEnvironmentVariable("KONSOLE_CLAUDE_CLI");
        if (!string.IsNullOrWhiteSpace(overridden))
            return Task.FromResult(overridden.Contains(Path.DirectorySeparatorChar) ? Path.GetFullPath(overridden) : overridden);
        return EnsureInstalledAsync(InstallDirectory(), ct);
    }

    /// <summary>
    /// Returns the full path of the pinned CLI in <paramref name="directory"/> (node_modules/.bin/claude), installed with
    /// <c>npm install --prefix &lt;directory&gt; @anthropic-ai/claude-code@2.1.328</c> when missing, of another version, or
    /// not answering <c>--version</c> with it. An install counts once its <c>--version</c> has answered: a marker file
    /// (<c>.verified</c>) records that, so an install another process is still running, or one cut short, is never handed
    /// out. Safe when several processes call it at once (an exclusive lock file around the check and the install).
    /// Throws <see cref="InvalidOperationException"/> with npm's output when npm fails or is missing.
    /// </summary>
    public static async Task<string> EnsureInstalledAsync(string directory, CancellationToken ct = default)
    {
        var dir = Path.GetFullPath(directory);
        var cli = Path.Combine(dir, "node_modules", ".bin", "claude");
        var marker = Path.Combine(dir, ".verified");
        bool Ready() => IsVerified(marker) && IsInstalled(dir, cli);
        if (Ready())
            return cli;

        var gate = InProcess.GetOrAdd(dir, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            Directory.CreateDirectory(dir);
            await using var installLock = await LockAsync(Path.Combine(dir, ".install.lock"), ct);
            if (Ready()) // another process installed it while we waited
                return cli;
            // One installed without this method (by hand, or CI's own npm install) or cut short counts if it answers.
            if (!IsInstalled(dir, cli) || await WrongVersionAsync(cli, dir, ct) is not null)
            {
                File.Delete(marker);
                // A half-done or other-version install may look current to npm (its lock file): start clean.
                var modules = Path.Combine(dir, "node_modules");
                if (Directory.Exists(modules))
                    Directory.Delete(modules, recursive: true);
                File.Delete(Path.Combine(dir, "package-lock.json"));
                await NpmAsync(["install", "--prefix", dir, "--no-audit", "--no-fund", $"{Package}@{Version}"], dir, ct);
                if (!IsInstalled(dir, cli))
                    throw new InvalidOperationException($"npm installed {Package}@{Version} into {dir}, but {cli} or its package.json is missing.");
                // The package's postinstall puts the native binary in place; without it only a stub runs.
                if (await WrongVersionAsync(cli, dir, ct) is { } wrong)
                    throw new InvalidOperationException($"{cli} --version {wrong}");
            }
            await File.WriteAllTextAsync(marker, Version, ct);
            return cli;
        }
        finally
        {
            gate.Release();
        }
    }

    private static bool IsVerified(string marker)
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

    /// <summary>Null when <c>cli --version</c> answers the pinned version; else what it did instead.</summary>
    private static async Task<string?> WrongVersionAsync(string cli, string dir, CancellationToken ct)
    {
        try
        {
            var run = await ProgramRun.RunAsync(cli, ["--version"], dir, TimeSpan.FromMinutes(1), "", ct);
            var said = (run.Output + run.Errors).Trim();
            return run.ExitCode == 0 && said.Contains(Version, StringComparison.Ordinal) ? null
                : $"answered '{said}' (exit {run.ExitCode}), not {Version}.";
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            return $"did not answer: {e.Message}";
        }
    }

    private static string InstallDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Konsole.Actors.sln")))
                return Path.Combine(dir.FullName, ".tools", "claude");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "konsole", "tools", "claude");
    }

    private static bool IsInstalled(string dir, string cli)
    {
        var manifest = Path.Combine(dir, "node_modules", "@anthropic-ai", "claude-code", "package.json");
        if (!File.Exists(cli) || !File.Exists(manifest))
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

    /// <summary>An exclusive lock (flock on Unix) held while the returned stream is open.</summary>
    private static async Task<FileStream> LockAsync(string path, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            }
        }
    }

    /// <summary>Runs npm to its end; throws with its output when it cannot start, fails or takes too long.</summary>
    private static async Task NpmAsync(string[] args, string workingDirectory, CancellationToken ct)
    {
        var run = await ProgramRun.RunAsync("npm", args, workingDirectory, NpmTimeout, $"Installing {Package}@{Version} needs Node.js and npm on PATH.", ct);
        if (run.ExitCode != 0)
            throw new InvalidOperationException($"`npm {string.Join(' ', args)}` exited with {run.ExitCode}:\n{run.Output}{run.Errors}");
    }
}
