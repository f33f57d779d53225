using System.ComponentModel;
using System.Diagnostics;
using Konsole.Actors;

namespace Konsole.Host;

/// <summary>Checks the Claude Code CLI before anything starts, so a missing one, or one that cannot start, is one clear message.</summary>
public static class ClaudeCli
{
    public const string PinnedPackage = "@anthropic-ai/claude-code@2.1.328";

    private const string TryDemo = "or try konsole without a Claude login: dotnet run --project src/Konsole.Host -- --demo";

    public static string NotFoundMessage(string path) => $"""
        konsole: {(File.Exists(path) ? $"cannot run the Claude Code CLI '{path}' (konsole.claude.path): the file is not executable (chmod +x)" : $"cannot find the Claude Code CLI '{path}' (konsole.claude.path)")}.
          Install it:  npm install -g {PinnedPackage}
          or set konsole.claude.path in your --config file to the CLI's full path,
          {TryDemo}
        """;

    private static readonly TimeSpan VersionTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Runs <c>&lt;program&gt; --version</c>, before anything else starts. Returns why it cannot be started (a bad interpreter line, a
    /// binary for another machine), or null and what it answered (or that it gave no answer: a wrapper may not know the option);
    /// <paramref name="secrets"/> masked in either (it runs with the host's environment, the accounts' API keys in it).
    /// </summary>
    public static string? CannotStart(string program, IReadOnlyList<string> secrets, out string answer)
    {
        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("--version");
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            answer = "";
            return e.Message;
        }
        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(VersionTimeout) || !Task.WaitAll([output, errors], VersionTimeout))
            {
                process.Kill(entireProcessTree: true);
                answer = $"no answer to --version within {VersionTimeout.TotalSeconds:0} s";
                return null;
            }
            var said = Tail(SecretRedactor.Redact(errors.Result.Trim().Length > 0 ? errors.Result : output.Result, secrets));
            // 126 and 127: what a launcher (an "#!/usr/bin/env node" line, a shell) exits with when it cannot run the program.
            if (process.ExitCode is 126 or 127)
            {
                answer = "";
                return $"it exited with {process.ExitCode} at once: {said}";
            }
            answer = process.ExitCode == 0 ? SecretRedactor.Redact(output.Result.Trim(), secrets) : $"--version exited with {process.ExitCode}: {said}";
            return null;
        }
    }

    private static string Tail(string text) => text.Trim() is var t && t.Length > 200 ? "..." + t[^200..] : text.Trim();

    public static string CannotStartMessage(string path, string reason) => $"""
        konsole: the Claude Code CLI '{path}' (konsole.claude.path) cannot be started: {reason}.
          Reinstall it:  npm install -g {PinnedPackage}
          or set konsole.claude.path in your --config file to a CLI that runs here,
          {TryDemo}
        """;
}
