using Konsole.Testing;

namespace Konsole.Actors.Tests.Testing;

public sealed class ProgramRunSpecs
{
    [Fact]
    public async Task A_program_past_its_timeout_is_killed_and_the_error_says_what_it_last_wrote_to_stderr()
    {
        var pidFile = Path.Combine(Path.GetTempPath(), $"konsole-programrun-{Guid.NewGuid():N}");
        try
        {
            var error = await Assert.ThrowsAsync<TimeoutException>(() => ProgramRun.RunAsync("sh",
                ["-c", $"echo $$ > '{pidFile}'; echo 'npm error network unreachable' >&2; exec sleep 300"], Path.GetTempPath(), TimeSpan.FromSeconds(5), "")); // sh writes both within it on a slow machine

            Assert.Contains("did not finish within 5 s and was killed", error.Message);
            Assert.Contains("npm error network unreachable", error.Message);
            Assert.False(ProcessTable.IsRunning(int.Parse(File.ReadAllText(pidFile).Trim())), "it was left running");
        }
        finally
        {
            File.Delete(pidFile);
        }
    }
}
