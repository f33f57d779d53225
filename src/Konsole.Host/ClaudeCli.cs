namespace Konsole.Host;

/// <summary>Finds the Claude Code CLI before anything starts, so a missing CLI is one clear message.</summary>
public static class ClaudeCli
{
    public const string PinnedPackage = "@anthropic-ai/claude-code@2.1.328";

    /// <summary>The full path of <paramref name="path"/> (a path, or a name looked up on PATH), or null.</summary>
    public static string? Locate(string path)
    {
        if (path.Contains(Path.DirectorySeparatorChar))
            return File.Exists(path) ? Path.GetFullPath(path) : null;
        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, path))
            .FirstOrDefault(File.Exists);
    }

    public static string NotFoundMessage(string path) => $"""
        konsole: cannot find the Claude Code CLI '{path}' (konsole.claude.path).
          Install it:  npm install -g {PinnedPackage}
          or set konsole.claude.path in your --config file to the CLI's full path,
          or try konsole without a Claude login: dotnet run --project src/Konsole.Host -- --demo
        """;
}
