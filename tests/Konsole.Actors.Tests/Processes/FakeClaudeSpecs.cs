using System.Diagnostics;
using Konsole.Testing;

namespace Konsole.Actors.Tests.Processes;

/// <summary>The shipped fake CLI itself, driven over its stdin as the real one is.</summary>
public sealed class FakeClaudeSpecs : IDisposable
{
    private readonly string _configDir = Directory.CreateTempSubdirectory("konsole-fakeclaude-specs-").FullName;

    public void Dispose() => Directory.Delete(_configDir, recursive: true);

    [Theory]
    [InlineData("""{"type":1}""")]
    [InlineData("""{"type":"user","message":{"role":5}}""")]
    [InlineData("""{"type":"user","message":{"role":"user","content":[{"type":"text"}]}}""")]
    [InlineData("not json")]
    public async Task A_line_it_cannot_take_ends_it_with_exit_1_as_the_real_cli_does(string line)
    {
        using var process = Start();
        _ = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();

        await process.StandardInput.WriteLineAsync(line);
        await process.StandardInput.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }

        Assert.Equal(1, process.ExitCode);
        Assert.Contains("Error", await errors);
    }

    [Fact]
    public async Task An_interrupt_that_cancels_the_queue_ends_the_running_turn_and_runs_none_of_the_queued_ones()
    {
        using var process = Start();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.StandardInput.WriteLineAsync(User("[[delay:600000]] running", "11111111-1111-4111-8111-111111111111"));
        await process.StandardInput.FlushAsync();
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line
            && !line.Contains("\"command_uuid\":\"11111111-1111-4111-8111-111111111111\",\"state\":\"started\""))
        {
        }
        var output = process.StandardOutput.ReadToEndAsync();

        await process.StandardInput.WriteLineAsync(User("queued", "22222222-2222-4222-8222-222222222222"));
        await process.StandardInput.WriteLineAsync(
            """{"type":"control_request","request_id":"r1","request":{"subtype":"interrupt","cancel_queued":true}}""");
        process.StandardInput.Close(); // it exits once nothing is left to run
        var lines = (await output.WaitAsync(TimeSpan.FromSeconds(30))).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Single(lines, l => l.Contains("\"type\":\"result\""));
        Assert.Contains(lines, l => l.Contains("\"command_uuid\":\"22222222-2222-4222-8222-222222222222\",\"state\":\"cancelled\""));
        Assert.DoesNotContain(lines, l => l.Contains("\"command_uuid\":\"22222222-2222-4222-8222-222222222222\",\"state\":\"started\""));
    }

    [Fact]
    public async Task It_answers_version_as_the_real_cli_does()
    {
        var start = new ProcessStartInfo(FakeClaudeCli.Path) { ArgumentList = { "--version" }, RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((0, "0.0.0 (FakeClaude)"), (process.ExitCode, output.Trim()));
    }

    [Fact]
    public async Task A_prompt_it_holds_back_quietly_still_runs_when_its_input_closes_as_the_real_cli_runs_all_it_was_sent()
    {
        using var process = Start();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.StandardInput.WriteLineAsync(User("[[quiet:300]] hi", "44444444-4444-4444-8444-444444444444"));
        process.StandardInput.Close();

        var output = await process.StandardOutput.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);

        Assert.Contains("\"type\":\"result\"", output);
        Assert.Equal(0, process.ExitCode);
    }

    [Fact]
    public async Task With_no_history_an_answer_leaves_the_conversation_out_so_every_turn_keeps_one_size()
    {
        using var process = Start();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var results = new List<string?>();
        foreach (var (text, i) in new[] { "a", "b [[no-history]]", "c" }.Select((t, i) => (t, i)))
        {
            await process.StandardInput.WriteLineAsync(User(text, $"55555555-5555-4555-8555-55555555555{i}"));
            await process.StandardInput.FlushAsync();
            string? line;
            while ((line = await process.StandardOutput.ReadLineAsync(timeout.Token)) is not null && !line.Contains("\"type\":\"result\""))
            {
            }
            results.Add(System.Text.Json.JsonDocument.Parse(line!).RootElement.GetProperty("result").GetString());
        }
        process.StandardInput.Close();
        await process.WaitForExitAsync(timeout.Token);

        Assert.Equal(["echo: a", "echo: b", "echo: c [history: a | b]"], results);
    }

    [Fact]
    public async Task Without_verbose_it_refuses_to_start_as_the_real_cli_does()
    {
        var start = new ProcessStartInfo(FakeClaudeCli.Path)
        {
            ArgumentList = { "-p", "--input-format", "stream-json", "--output-format", "stream-json" },
            RedirectStandardInput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var errors = await process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);

        Assert.Equal((1, "Error: When using --print, --output-format=stream-json requires --verbose"), (process.ExitCode, errors.Trim()));
    }

    [Fact]
    public async Task Options_are_taken_as_name_equals_value_too()
    {
        using var process = Start("--model=fake-opus");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.StandardInput.WriteLineAsync(User("hi", "33333333-3333-4333-8333-333333333333"));
        await process.StandardInput.FlushAsync();

        string? line;
        while ((line = await process.StandardOutput.ReadLineAsync(timeout.Token)) is not null && !line.Contains("\"subtype\":\"init\""))
        {
        }
        process.StandardInput.Close();
        await process.StandardOutput.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);

        Assert.Contains("\"model\":\"fake-opus\"", line);
    }

    private static string User(string text, string uuid) =>
        $$"""{"type":"user","message":{"role":"user","content":[{"type":"text","text":"{{text}}"}]},"uuid":"{{uuid}}"}""";

    private Process Start(params string[] more)
    {
        var start = new ProcessStartInfo(FakeClaudeCli.Path)
        {
            ArgumentList = { "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose" },
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            Environment = { ["CLAUDE_CONFIG_DIR"] = _configDir }, // its transcripts here, not in the user's own ~/.claude
        };
        foreach (var arg in more)
            start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }
}
