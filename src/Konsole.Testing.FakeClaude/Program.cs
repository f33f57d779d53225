using System.Runtime.InteropServices;
using Konsole.Testing.FakeClaude;

// FakeClaude: a stand-in for `claude -p --input-format stream-json --output-format stream-json --verbose`
// that answers from a script instead of a model. See FakeCli for the protocol and Directives for the faults.
if (args is ["--version" or "-v", ..])
{
    Console.WriteLine("0.0.0 (FakeClaude)"); // as the real CLI answers: "2.1.328 (Claude Code)"
    return 0;
}
var options = CliOptions.Parse(args);
if (options.Error is { } error)
{
    Console.Error.WriteLine($"Error: {error}");
    return 1;
}

var cli = new FakeCli(options, Console.OpenStandardInput(), Console.OpenStandardOutput(), Console.Error);
if (cli.ResumeError() is { } resumeError)
{
    Console.Error.WriteLine(resumeError);
    return 1;
}

// Like the real CLI: SIGINT interrupts the running turn instead of ending the process.
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
{
    context.Cancel = true;
    cli.Interrupt(cancelQueued: false);
});
return await cli.RunAsync();
