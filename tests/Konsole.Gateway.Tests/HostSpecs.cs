using System.Diagnostics;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Konsole.Testing;

namespace Konsole.Gateway.Tests;

/// <summary>The README's front door: the host program run as a process, as a user runs it.</summary>
public sealed partial class HostSpecs : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly KonsoleSandbox _sandbox = KonsoleSandbox.Create(0);

    [Fact]
    public async Task Without_the_cli_the_host_says_how_to_install_it_and_exits_3()
    {
        var config = WriteConfig("""konsole.claude.path = "/nonexistent/claude" """);

        var (exit, output) = await RunToEndAsync("--config", config);

        Assert.Equal(3, exit);
        Assert.Contains("cannot find the Claude Code CLI '/nonexistent/claude'", output);
        Assert.Contains("npm install -g @anthropic-ai/claude-code@2.1.328", output);
        Assert.Contains("--demo", output);
        Assert.DoesNotContain("   at ", output); // no stack trace
    }

    [Theory]
    [InlineData("konsole.queue.max-dept = 3", "unknown key 'konsole.queue.max-dept'")]
    [InlineData("konsole { accounts = [ { id = \"a\", config-dir = \"/tmp/a\" }, { id = \"a\", config-dir = \"/tmp/b\" } ] }", "duplicate account id 'a'")]
    [InlineData("konsole.roles.dashboard = \"nobody\"", "konsole.roles.dashboard names no account")]
    [InlineData("konsole { queue { max-depth = 3 }", "malformed HOCON")]
    [InlineData("konsole.gateway.urls = \"http://0.0.0.0:5080\"", "no token protects it")]
    public async Task A_configuration_it_cannot_honour_is_refused_with_the_file_and_key_named_and_exit_2(string hocon, string expected)
    {
        var config = WriteConfig(hocon + "\nkonsole.claude.path = \"" + FakeClaudeCli.Path + "\"");

        var (exit, output) = await RunToEndAsync("--config", config);

        Assert.Equal(2, exit);
        Assert.Contains(expected, output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task The_demo_serves_the_api_on_simulated_accounts_and_sigterm_stops_every_cli()
    {
        var config = WriteConfig($"konsole {{ data-dir = \"{_sandbox.DataDir}\", gateway.urls = \"http://127.0.0.1:0\" }}");
        using var host = Start("--demo", "--config", config);
        var output = new StringBuilder();
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        host.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (ListeningOn().Match(e.Data) is { Success: true } m)
                listening.TrySetResult(new Uri(m.Groups[1].Value));
        };
        host.BeginOutputReadLine();
        host.BeginErrorReadLine();
        using var client = new HttpClient { BaseAddress = await listening.Task.WaitAsync(Timeout) };

        var deadline = DateTime.UtcNow + Timeout;
        while (!(await client.GetAsync("/readyz")).IsSuccessStatusCode && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        var accounts = JsonDocument.Parse(await client.GetStringAsync("/api/accounts")).RootElement.GetProperty("accounts").EnumerateArray().ToList();
        var answer = await client.PostAsJsonAsync("/api/quick-turn", new { prompt = "hello demo" }) is var r
            ? await r.Content.ReadAsStringAsync() : "";
        var pids = accounts.SelectMany(a => a.GetProperty("processes").EnumerateArray()).Select(p => p.GetProperty("pid").GetInt32()).ToList();
        var clis = pids.Select(Process.GetProcessById).ToList();

        Assert.Equal(["alpha", "beta"], accounts.Select(a => a.GetProperty("id").GetString()));
        Assert.All(accounts, a => Assert.True(a.GetProperty("simulated").GetBoolean()));
        Assert.Contains("echo: hello demo", answer);
        Assert.Contains("DEMO", output.ToString());

        Assert.Equal(0, Kill(host.Id, 15)); // SIGTERM
        await host.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        Assert.Equal(0, host.ExitCode);
        Assert.All(clis, p => Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), $"FakeClaude pid {p.Id} outlived the host"));
    }

    public void Dispose() => _sandbox.Dispose();

    private string WriteConfig(string hocon)
    {
        var path = Path.Combine(_sandbox.Root, $"konsole-{Guid.NewGuid():N}.hocon");
        File.WriteAllText(path, hocon);
        return path;
    }

    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "konsole.dll"));
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    private static async Task<(int Exit, string Output)> RunToEndAsync(params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"Gateway listening on (http://\S+)")]
    private static partial Regex ListeningOn();
}
