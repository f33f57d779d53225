using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Konsole.Testing;

/// <summary>What a program run to its end printed, and how it exited.</summary>
public sealed record ProgramOutcome(int ExitCode, string Output, string Errors);

/// <summary>Runs a helper program (npm, node, a CLI's <c>--version</c>) to its end, its output collected; it is never left running.</summary>
public static class ProgramRun
{
    /// <summary>
    /// Runs <paramref name="program"/> in <paramref name="directory"/> with stdin closed. Past <paramref name="timeout"/> its
    /// whole process tree is killed and <see cref="TimeoutException"/> thrown (with the end of its stderr); so too when
    /// <paramref name="ct"/> is cancelled (then <see cref="OperationCanceledException"/>) or this process gets SIGINT or
    /// SIGTERM. A program that cannot start throws <see cref="InvalidOperationException"/> ending with <paramref name="needs"/>.
    /// </summary>
    public static async Task<ProgramOutcome> RunAsync(string program, IReadOnlyList<string> args, string directory, TimeSpan timeout, string needs,
        CancellationToken ct = default)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = directory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"`{program}` could not start ({e.Message}). {needs}", e);
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => Kill(process));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => Kill(process));
        try
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
            try
            {
                await process.WaitForExitAsync(ct).WaitAsync(timeout, ct);
            }
            catch (TimeoutException)
            {
                Kill(process);
                string tail;
                try
                {
                    tail = Tail(await errors.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None)); // its pipe closes as it dies
                }
                catch (TimeoutException)
                {
                    tail = "";
                }
                throw new TimeoutException($"`{program} {string.Join(' ', args)}` did not finish within {timeout.TotalSeconds:0} s and was killed.\n{tail}");
            }
            var pipes = TimeSpan.FromSeconds(10); // a grandchild still holding the pipes must not hold us
            return new ProgramOutcome(process.ExitCode, await output.WaitAsync(pipes, CancellationToken.None), await errors.WaitAsync(pipes, CancellationToken.None));
        }
        finally
        {
            Kill(process);
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // exited meanwhile
        }
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : "..." + text[^4000..];
}
