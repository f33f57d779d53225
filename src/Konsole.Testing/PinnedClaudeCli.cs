namespace Konsole.Testing;

/// <summary>The real Claude Code CLI the integration tests run: one pinned version, installed with npm on first use.</summary>
public static class PinnedClaudeCli
{
    public const string Package = "@anthropic-ai/claude-code";
    public const string Version = "2.1.328";

    private static readonly NpmTool Tool = new(Package, Version, Path.Combine("node_modules", ".bin", "claude"), Version);

    /// <summary>
    /// Returns the full path of the pinned CLI. KONSOLE_CLAUDE_CLI (env) wins if set; else the CLI installed in
    /// &lt;repo root&gt;/.tools/claude (repo root = the first parent of AppContext.BaseDirectory holding
    /// Konsole.Actors.sln; elsewhere ~/.cache/konsole/tools/claude-&lt;version&gt;), as <see cref="EnsureInstalledAsync(string, CancellationToken)"/> does.
    /// </summary>
    public static Task<string> EnsureInstalledAsync(CancellationToken ct = default)
    {
        var overridden = Environment.GetEnvironmentVariable("KONSOLE_CLAUDE_CLI");
        if (!string.IsNullOrWhiteSpace(overridden))
            return Task.FromResult(overridden.Contains(Path.DirectorySeparatorChar) ? Path.GetFullPath(overridden) : overridden);
        return EnsureInstalledAsync(NpmTool.DirectoryFor("claude", Version), ct);
    }

    /// <summary>
    /// Returns the full path of the pinned CLI in <paramref name="directory"/> (node_modules/.bin/claude), installed with
    /// <c>npm install --prefix &lt;directory&gt; @anthropic-ai/claude-code@2.1.328</c> when missing, of another version, or
    /// not answering <c>--version</c> with it (<see cref="NpmTool.EnsureInstalledAsync"/>).
    /// </summary>
    public static Task<string> EnsureInstalledAsync(string directory, CancellationToken ct = default) => Tool.EnsureInstalledAsync(directory, ct);
}
