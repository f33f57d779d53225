using Konsole.Actors.Configuration;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;

namespace Konsole.Actors.Accounts;

/// <summary>The command line and environment of an account's CLI processes.</summary>
public static class CliLaunch
{
    /// <summary>Variables of the host that must never reach an account's process: they would select another login.</summary>
    public static readonly IReadOnlyList<string> RemovedVariables =
        ["CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDECODE"];

    /// <summary>
    /// The launch of one of <paramref name="account"/>'s processes. Every account's <c>api-key-env</c> variable is removed from it
    /// (its own key reaches it as <c>ANTHROPIC_API_KEY</c>): the CLI runs tools, and one account's process is no place for another's key.
    /// </summary>
    public static ProcessLaunch For(KonsoleSettings settings, AccountSettings account, ProcessMode mode)
    {
        var claude = settings.Claude;
        List<string> arguments = ["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"];
        if (mode == ProcessMode.Chat)
            arguments.AddRange(["--tools", "", "--append-system-prompt", claude.ChatSystemPrompt]);
        arguments.AddRange(claude.ExtraArgs);

        var environment = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var name in RemovedVariables.Concat(settings.Accounts.Select(a => a.ApiKeyEnv).OfType<string>()))
            environment[name] = null; // CliWrap removes variables set to null
        foreach (var (name, value) in claude.Environment)
            environment[name] = value;
        if (!account.CliDefaultLogin)
            environment["CLAUDE_CONFIG_DIR"] = account.ConfigDir;
        if (account.ApiKeyEnv is { } keyVariable)
            environment["ANTHROPIC_API_KEY"] = Environment.GetEnvironmentVariable(keyVariable);

        return new ProcessLaunch(claude.Path, arguments, environment, claude.WorkingDirectory, claude.MaxLineBytes);
    }
}
