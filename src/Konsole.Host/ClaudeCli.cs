namespace Konsole.Host;

/// <summary>Finds the Claude Code CLI before anything starts, so a missing CLI is one clear message.</summary>
public static class ClaudeCli
{
    public const string PinnedPackage = "@anthropic-ai/claude-code@2.1.328";

    public static string NotFoundMessage(string path) => $"""
        konsole: cannot find the Claude Code CLI '{path}' (konsole.claude.path){(File.Exists(path) ? ": the file is not executable" : "")}.
          Install it:  npm install -g {PinnedPackage}
          or set konsole.claude.path in your --config file to the CLI's full path,
          or try konsole without a Claude login: dotnet run --project src/Konsole.Host -- --demo
        """;
}
