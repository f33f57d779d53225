using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Konsole.Actors.Processes;
using Konsole.Testing;
using Microsoft.Data.Sqlite;

namespace Konsole.Gateway.Tests;

/// <summary>The README's front door: the host program run as a process, as a user runs it.</summary>
public sealed partial class HostSpecs(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly KonsoleSandbox _sandbox = KonsoleSandbox.Create(0);

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_prints_the_usage_and_exits_0(string flag)
    {
        var (exit, output) = await RunToEndAsync(flag);

        Assert.Equal(0, exit);
        Assert.StartsWith("usage: konsole [--config FILE.hocon] [--demo]", output);
    }

    [Theory]
    [InlineData("konsole: unknown argument '--bogus'", "--bogus")]
    [InlineData("konsole: --config needs a file", "--config")]
    public async Task A_command_line_it_does_not_take_is_named_with_the_usage_and_exits_2(string problem, params string[] args)
    {
        var (exit, output) = await RunToEndAsync(args);

        Assert.Equal(2, exit);
        Assert.StartsWith(problem, output);
        Assert.Contains("usage: konsole [--config FILE.hocon] [--demo]", output);
    }

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
    [InlineData("#!/nonexistent/interpreter\n")] // exec fails
    [InlineData("#!/usr/bin/env konsole-no-such-interpreter\n")] // exec works, env then exits 127 (an npm CLI without node on PATH)
    public async Task A_cli_that_cannot_be_started_is_refused_with_the_reason_and_exit_3(string script)
    {
        var cli = await WriteCliAsync(script);

        var (exit, output) = await RunToEndAsync("--config", WriteConfig($"konsole.claude.path = \"{cli}\""));

        Assert.Equal(3, exit);
        Assert.Contains($"the Claude Code CLI '{cli}' (konsole.claude.path) cannot be started: ", output);
        Assert.Contains("npm install -g @anthropic-ai/claude-code@2.1.328", output);
        Assert.Contains("--demo", output); // the contract's third way out: try it without a CLI
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task An_api_key_the_cli_prints_when_asked_its_version_is_masked_in_what_the_host_says()
    {
        const string key = "proxy-5d1e0b7c93a2f4"; // a proxy's key: nothing like sk-ant-
        var cli = await WriteCliAsync("#!/bin/sh\necho \"no key accepted: $KONSOLE_SPEC_PROXY_KEY\" >&2\nexit 127\n");
        var config = WriteConfig($"konsole.claude.path = \"{cli}\"\nkonsole.accounts = [{{ id = proxy, api-key-env = KONSOLE_SPEC_PROXY_KEY }}]");

        var (exit, output) = await RunToEndAsync(new Dictionary<string, string> { ["KONSOLE_SPEC_PROXY_KEY"] = key }, "--config", config);

        Assert.Equal(3, exit);
        Assert.Contains("no key accepted: ***", output);
        Assert.DoesNotContain(key, output);
    }

    [Fact]
    public async Task A_cli_file_that_cannot_be_run_is_refused_the_same_way()
    {
        var cli = Path.Combine(_sandbox.Root, "claude");
        await File.WriteAllTextAsync(cli, "#!/bin/sh\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(cli, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var (exit, output) = await RunToEndAsync("--config", WriteConfig($"konsole.claude.path = \"{cli}\""));

        Assert.Equal(3, exit);
        Assert.Contains($"cannot run the Claude Code CLI '{cli}' (konsole.claude.path): the file is not executable (chmod +x)", output);
    }

    [Fact]
    public async Task A_second_host_on_the_same_data_dir_is_refused_and_leaves_the_first_ones_processes_alone()
    {
        var config = WriteConfig(DemoConfig);
        await using var first = await HostProcess.StartAsync(config);
        var clis = (await first.CliProcessesAsync()).Select(p => p.Id).Order().ToList();

        var (exit, output) = await RunToEndAsync("--demo", "--config", config);

        Assert.Equal(2, exit);
        Assert.Contains($"another konsole host runs on the data dir {Path.Combine(_sandbox.DataDir, "demo")}", output); // the demo's own
        Assert.DoesNotContain("   at ", output);
        Assert.Equal(clis, (await first.CliProcessesAsync()).Select(p => p.Id).Order().ToList()); // not taken for orphans and ended
        Assert.Contains("echo: still here", await (await first.Client.PostAsJsonAsync("/api/quick-turn", new { prompt = "still here" })).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_port_already_taken_is_one_clear_message_and_exit_2()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var config = WriteConfig($"konsole {{ data-dir = \"{_sandbox.DataDir}\", gateway.urls = \"http://127.0.0.1:{port}\" }}");

        var (exit, output) = await RunToEndAsync("--demo", "--config", config);

        Assert.Equal(2, exit);
        Assert.Contains($"konsole: {config}: konsole.gateway.urls: cannot listen on http://127.0.0.1:{port}", output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task An_address_not_on_this_machine_is_one_clear_message_and_exit_2()
    {
        // 192.0.2.1 is reserved for documentation (RFC 5737): no machine has it, so the bind fails with "address not available",
        // which Kestrel raises as a SocketException of its own (only "address in use" becomes an IOException). Was a stack trace.
        var config = WriteConfig($$"""konsole { data-dir = "{{_sandbox.DataDir}}", gateway { urls = "http://192.0.2.1:5080", auth-token = s3cret } }""");

        var (exit, output) = await RunToEndAsync("--demo", "--config", config);

        Assert.Equal(2, exit);
        Assert.Contains($"konsole: {config}: konsole.gateway.urls: cannot listen on http://192.0.2.1:5080", output);
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("s3cret", output);
    }

    [Theory]
    [InlineData("konsole.queue.max-dept = 3", "unknown key 'konsole.queue.max-dept'")]
    [InlineData("konsole { accounts = [ { id = \"a\", config-dir = \"/tmp/a\" }, { id = \"a\", config-dir = \"/tmp/b\" } ] }", "duplicate account id 'a'")]
    [InlineData("konsole.roles.dashboard = \"nobody\"", "konsole.roles.dashboard names no account")]
    [InlineData("konsole { queue { max-depth = 3 }", "malformed HOCON")]
    [InlineData("konsole.gateway.urls = \"http://0.0.0.0:5080\"", "no token protects it")]
    [InlineData("konsole.gateway.urls = \"http://127.0.0.1:5392/konsole\"", "konsole.gateway.urls: 'http://127.0.0.1:5392/konsole' is not a URL such as")] // was a stack trace, exit 134
    [InlineData("konsole.gateway.urls = \"https://127.0.0.1:5392\"", "https needs a certificate")] // likewise
    [InlineData("konsole.gateway.urls = \";\"", "konsole.gateway.urls: ';' names no URL")] // was Kestrel's default, port 5000
    [InlineData("konsole.gateway.max-prompt-bytes = 1GiB", "konsole.gateway.max-prompt-bytes must be a size such as 1048576 or 64MiB, at most 256MiB")]
    [InlineData("akka.log-config-on-start = on\nkonsole.gateway.auth-token = \"s3cret\"", "akka.log-config-on-start would write konsole.gateway.auth-token")]
    [InlineData("akka.loglevel = LOUD", "akka.loglevel must be one of DEBUG, INFO, WARNING, ERROR or OFF")] // was a stack trace, exit 134
    [InlineData("akka.actor.default-dispatcher.throughput = abc", "the actor system does not start with this configuration (check its akka section): The input string 'abc'")] // was a stack trace, exit 134
    [InlineData("akka.actor.provider = nonsense", "(check its akka section): 'akka.actor.provider' is not a valid type name")]
    [InlineData("konsole.queue.max-depth = ${?KONSOLE_DEPTH}", "substitutions are not supported")] // was a stack overflow
    [InlineData("konsole.gateway { auth-token = x, auth-token-file = \"/tmp/t\" }", "konsole.gateway: set auth-token or auth-token-file, not both")]
    public async Task A_configuration_it_cannot_honour_is_refused_with_the_file_and_key_named_and_exit_2(string hocon, string expected)
    {
        var config = WriteConfig(hocon + "\nkonsole.claude.path = \"" + FakeClaudeCli.Path + "\"");

        var (exit, output) = await RunToEndAsync("--config", config);

        Assert.Equal(2, exit);
        Assert.Contains(expected, output);
        Assert.Contains($"konsole: {config}: ", output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task The_gateway_listens_only_where_konsole_gateway_urls_says_not_where_kestrels_own_settings_would()
    {
        using var free = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        free.Start();
        var port = ((IPEndPoint)free.LocalEndpoint).Port;
        free.Stop();
        // An environment variable ASP.NET Core reads: it put the gateway on every interface, without the token that needs.
        var environment = new Dictionary<string, string> { ["Kestrel__Endpoints__Http__Url"] = $"http://0.0.0.0:{port}" };

        await using var host = await HostProcess.StartAsync(WriteConfig(DemoConfig), environment: environment);

        Assert.Equal("127.0.0.1", host.Client.BaseAddress!.Host);
        Assert.NotEqual(port, host.Client.BaseAddress.Port);
        using var probe = new System.Net.Sockets.TcpClient();
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, port));
    }

    [Fact]
    public async Task The_demo_keeps_its_state_apart_so_the_real_host_on_that_data_dir_never_sees_its_sessions()
    {
        await using (var host = await HostProcess.StartAsync(WriteConfig(DemoConfig)))
            Assert.True((await host.Client.PostAsJsonAsync("/sessions/ui-1/hot-prompt", new { prompt = "Remember 42" })).IsSuccessStatusCode);

        // The real host's journal would have held it: its next prompt then asked the real CLI to resume a FakeClaude transcript.
        Assert.False(File.Exists(Path.Combine(_sandbox.DataDir, "konsole.db")));
        Assert.True(File.Exists(Path.Combine(_sandbox.DataDir, "demo", "konsole.db")));
    }

    [Fact]
    public async Task The_demo_starts_on_a_file_that_only_its_own_accounts_make_valid()
    {
        // Alone, the file's role names no account of its own (the default one): it was refused, listing that account.
        await using var host = await HostProcess.StartAsync(WriteConfig(DemoConfig + "\nkonsole.roles.dashboard = alpha"));

        Assert.True(File.Exists(Path.Combine(_sandbox.DataDir, "demo", "konsole.db")));
    }

    [Fact]
    public async Task The_demo_serves_the_api_on_simulated_accounts_and_sigterm_stops_every_cli()
    {
        await using var host = await HostProcess.StartAsync(WriteConfig(DemoConfig));

        var accounts = JsonDocument.Parse(await host.Client.GetStringAsync("/api/accounts")).RootElement.GetProperty("accounts").EnumerateArray().ToList();
        var answer = await (await host.Client.PostAsJsonAsync("/api/quick-turn", new { prompt = "hello demo" })).Content.ReadAsStringAsync();
        var clis = await host.CliProcessesAsync();

        Assert.Equal(["alpha", "beta"], accounts.Select(a => a.GetProperty("id").GetString()));
        Assert.All(accounts, a => Assert.True(a.GetProperty("simulated").GetBoolean()));
        Assert.Contains("echo: hello demo", answer);
        Assert.Contains("DEMO", host.Output);
        Assert.DoesNotContain(" DBG] ", host.Output); // akka.loglevel = INFO
        await host.WaitForOutputAsync("Account alpha: Starting -> Idle"); // the accounts' states as they change (logged asynchronously)
        await host.WaitForOutputAsync("Account beta: Starting -> Idle");

        Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM
        await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        Assert.Equal(0, host.Process.ExitCode);
        Assert.All(clis, p => Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), $"FakeClaude pid {p.Id} outlived the host"));
    }

    [Fact]
    public async Task Akka_loglevel_debug_shows_the_debug_lines_in_the_hosts_log()
    {
        await using var host = await HostProcess.StartAsync(WriteConfig(DemoConfig + "\nakka.loglevel = DEBUG"));

        await host.WaitForOutputAsync(" DBG] ");
    }

    [Fact]
    public async Task Sigterm_mid_turn_lets_the_turn_finish_ends_the_followers_and_leaves_no_cli()
    {
        await using var host = await HostProcess.StartAsync(WriteConfig(DemoConfig));
        await using var events = await SseStream.OpenAsync(host.Client, new HttpRequestMessage(HttpMethod.Get, "/api/events"), Timeout);
        await using var turn = await SseStream.OpenAsync(host.Client,
            new HttpRequestMessage(HttpMethod.Post, "/sessions/ui-1/hot-prompt") { Content = JsonContent.Create(new { prompt = "[[chunks:60:50]] finishing" }) }, Timeout);
        await turn.NextOfTypeAsync("assistant", Timeout);
        var clis = await host.CliProcessesAsync();

        var stopping = Stopwatch.StartNew();
        Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM

        await events.ReadToEndAsync(Timeout); // the follower's stream ends as the host begins to stop
        using (var readiness = await host.Client.GetAsync("/readyz")) // while the turn still runs
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, readiness.StatusCode); // as prompts are refused now (was 200)
        var ended = await turn.ReadToEndAsync(Timeout);
        Assert.True(ended[^1].Event == "result", $"{ended[^1].Event}: {ended[^1].Data}\n{host.Output}");
        Assert.Equal("echo: finishing", JsonDocument.Parse(ended[^1].Data).RootElement.GetProperty("result").GetString());
        await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        Assert.Equal(0, host.Process.ExitCode);
        Assert.All(clis, p => Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), $"FakeClaude pid {p.Id} outlived the host"));
        await host.WaitForOutputAsync("draining");
        output.WriteLine($"FIGURES host SIGTERM mid-turn: the turn ran on to its result ({ended.Count} more events), " +
            $"exit 0 {stopping.Elapsed.TotalSeconds:0.0}s after the SIGTERM, {clis.Count} CLIs, none left");
    }

    [Fact]
    public async Task Sigterm_interrupts_a_turn_still_running_at_the_drain_timeout_and_the_restart_does_not_run_it_again()
    {
        var config = WriteConfig(DemoConfig + " konsole.shutdown.drain-timeout = 1s");
        await using (var host = await HostProcess.StartAsync(config))
        {
            await using var turn = await OpenAsync(host.Client, "/sessions/ui-1/hot-prompt", "[[chunks:1200:50]] too long to finish"); // a minute
            await turn.NextOfTypeAsync("assistant", Timeout);
            var clis = await host.CliProcessesAsync();

            Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM

            var ended = await turn.ReadToEndAsync(Timeout);
            Assert.Equal(("result", "error_during_execution"), (ended[^1].Event, // the CLI's own end of an interrupted turn
                JsonDocument.Parse(ended[^1].Data).RootElement.GetProperty("subtype").GetString()));
            await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
            Assert.Equal(0, host.Process.ExitCode);
            Assert.All(clis, p => Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), $"FakeClaude pid {p.Id} outlived the host"));
        }

        await using var next = await HostProcess.StartAsync(config);

        var answer = ResultOf((await RunAsync(next.Client, "/sessions/ui-1/hot-prompt", "What was asked?"))[^1])!;
        Assert.StartsWith("echo: What was asked? [history: ", answer); // the conversation resumed...
        Assert.Single(Regex.Matches(answer, "too long to finish")); // ...with the interrupted prompt in it once: not run again
    }

    [Fact]
    public async Task A_cli_left_running_by_a_killed_host_is_ended_at_the_next_start()
    {
        var config = WriteConfig(DemoConfig);
        Process orphan;
        await using (var host = await HostProcess.StartAsync(config))
        {
            var hung = await SseStream.OpenAsync(host.Client,
                new HttpRequestMessage(HttpMethod.Post, "/sessions/ui-1/hot-prompt") { Content = JsonContent.Create(new { prompt = "[[hang]] stuck" }) }, Timeout);
            await hung.NextOfTypeAsync("system", Timeout);
            var accounts = JsonDocument.Parse(await host.Client.GetStringAsync("/api/accounts")).RootElement.GetProperty("accounts");
            orphan = Process.GetProcessById(accounts[0].GetProperty("processes")[0].GetProperty("pid").GetInt32());

            host.Process.Kill(); // SIGKILL: no chance to stop anything
            await host.Process.WaitForExitAsync();
            await hung.DisposeAsync();
        }
        Assert.False(orphan.WaitForExit(TimeSpan.FromMilliseconds(500)), "the hung CLI should outlive its killed host");

        await using var next = await HostProcess.StartAsync(config);

        Assert.True(orphan.WaitForExit(Timeout), $"pid {orphan.Id} is still running");
        await next.WaitForOutputAsync("a previous host left running: pid "); // logged asynchronously
        Assert.Matches($@"left running: pid [\d, ]*\b{orphan.Id}\b", next.Output);
    }

    [Fact]
    public async Task Sigterm_during_the_start_before_the_gateway_listens_stops_the_host_cleanly_and_leaves_no_cli()
    {
        // A CLI a killed host left running, its group trapping SIGTERM, holds the start: the reaper waits for it (3 s), and the
        // signal comes then, once the reaper's SIGTERM has reached it.
        var runDir = Directory.CreateDirectory(Path.Combine(_sandbox.DataDir, "demo", "run")).FullName;
        var termed = Path.Combine(_sandbox.Root, "termed");
        using var orphan = Process.Start(new ProcessStartInfo(Posix.SetSid!, ["sh", "-c", $"trap 'touch \"{termed}\"' TERM; while :; do sleep 0.1; done"]))!;
        File.WriteAllText(Path.Combine(runDir, $"cli-{orphan.Id}.json"),
            JsonSerializer.Serialize(new { Pid = orphan.Id, Started = Posix.StartTime(orphan.Id), Group = true }));
        await using var host = HostProcess.Launch(WriteConfig(DemoConfig));
        var deadline = DateTime.UtcNow + Timeout;
        while (!File.Exists(termed))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the reaper never signalled pid {orphan.Id}:\n{host.Output}");
            await Task.Delay(20);
        }

        Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM

        await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        Assert.True(host.Process.ExitCode == 0, $"exit {host.Process.ExitCode}:\n{host.Output}"); // was 134, an unhandled OperationCanceledException
        Assert.DoesNotContain("Gateway listening", host.Output); // the signal came during the start
        Assert.Empty(Directory.GetFiles(runDir, "cli-*.json")); // each CLI's record goes as it is stopped and has exited
        Assert.True(orphan.WaitForExit(Timeout));
    }

    [Fact]
    public async Task After_a_sigkill_mid_turn_the_restarted_host_has_its_roles_and_sessions_reports_the_cut_turn_and_runs_the_queued_prompt()
    {
        var config = WriteConfig(DemoConfig);
        List<Process> clis;
        string runningPrompt;
        await using (var host = await HostProcess.StartAsync(config))
        {
            await RunAsync(host.Client, "/sessions/ui-1/hot-prompt", "Remember 42");
            Assert.True((await host.Client.PostAsync("/api/accounts/switch", null)).IsSuccessStatusCode);
            await RunAsync(host.Client, "/sessions/ui-1/hot-prompt", "on beta");
            await using var running = await OpenAsync(host.Client, "/sessions/ui-1/hot-prompt", "[[chunks:1000:50]] cut short");
            runningPrompt = (await running.NextOfTypeAsync("assistant", Timeout)).Id!;
            await using var queued = await OpenAsync(host.Client, "/sessions/ui-2/hot-prompt", "waits its turn");
            Assert.Equal("queued", (await queued.NextAsync(Timeout))!.Event);
            clis = await host.CliProcessesAsync();

            host.Process.Kill(); // SIGKILL
            await host.Process.WaitForExitAsync();
        }

        var restarting = Stopwatch.StartNew();
        await using var next = await HostProcess.StartAsync(config);
        var readyAfter = restarting.Elapsed;

        Assert.All(clis, p => Assert.True(p.WaitForExit(Timeout), $"CLI pid {p.Id} outlived its host"));
        var status = JsonDocument.Parse(await next.Client.GetStringAsync("/api/accounts/status")).RootElement;
        Assert.Equal("beta", status.GetProperty("dashboard").GetProperty("accountId").GetString());
        var session = JsonDocument.Parse(await next.Client.GetStringAsync("/api/session/ui-1")).RootElement;
        Assert.Equal((2, "beta"), (session.GetProperty("turns").GetInt32(), session.GetProperty("accountId").GetString()));
        await using (var events = await SseStream.OpenAsync(next.Client, new HttpRequestMessage(HttpMethod.Get, "/api/session/ui-1/events?after=0"), Timeout))
        {
            var error = await events.NextOfTypeAsync("error", Timeout);
            Assert.Equal("interrupted", JsonDocument.Parse(error.Data).RootElement.GetProperty("code").GetString());
            Assert.True(long.Parse(error.Id!) > long.Parse(runningPrompt));
        }
        await using (var events = await SseStream.OpenAsync(next.Client, new HttpRequestMessage(HttpMethod.Get, "/api/session/ui-2/events?after=0"), Timeout))
            Assert.Equal("echo: waits its turn", ResultOf(await events.NextOfTypeAsync("result", Timeout)));
        Assert.StartsWith("echo: What number? [history: Remember 42 | on beta", ResultOf((await RunAsync(next.Client, "/sessions/ui-1/hot-prompt", "What number?"))[^1]));
        output.WriteLine($"FIGURES host SIGKILL mid-turn: the next host ready in {readyAfter.TotalSeconds:0.0}s with the swap and both " +
            $"sessions back; the cut turn reported interrupted, the queued prompt run, the conversation continued; {clis.Count} CLIs of " +
            "the killed host, none left");
    }

    [Fact]
    public async Task A_journal_it_cannot_read_back_stops_the_host_with_exit_4_instead_of_leaving_it_never_ready()
    {
        // It served nothing: it does not wait out the drain period (longer than this test waits) before it exits.
        var config = WriteConfig(DemoConfig + " konsole.shutdown.drain-timeout = 10m");
        await using (var host = await HostProcess.StartAsync(config))
            Assert.True((await host.Client.PostAsync("/api/accounts/switch", null)).IsSuccessStatusCode); // journals the roles
        using (var db = new SqliteConnection($"Data Source={Path.Combine(_sandbox.DataDir, "demo", "konsole.db")};Pooling=false"))
        {
            db.Open();
            using var corrupt = db.CreateCommand();
            corrupt.CommandText = "UPDATE journal SET message = x'ff00ff' WHERE persistence_id = 'konsole-roles'";
            Assert.True(corrupt.ExecuteNonQuery() > 0);
        }

        var (exit, output) = await RunToEndAsync("--demo", "--config", config);

        Assert.Equal(4, exit);
        Assert.Contains("Could not read the state of konsole-roles back from the journal (konsole.persistence): the host stops", output);
        Assert.Contains("Konsole stopped: the state of konsole-roles could not be read back from the journal", output);
    }

    [Fact]
    public async Task Sigterm_while_the_roles_are_still_being_read_back_stops_the_host_without_waiting_out_the_drain()
    {
        // Nothing answers on port 1: the roles are never read back, so no prompt was ever routed. The drain period is longer
        // than this test waits (it took drain-timeout + interrupt-timeout, the router answering no drain's question). Not the
        // demo, which keeps its state in SQLite whatever the file says (with it, /readyz was ready as often as not).
        var configDir = Directory.CreateDirectory(Path.Combine(_sandbox.Root, "alpha")).FullName;
        var config = WriteConfig(DemoConfig + " konsole.shutdown.drain-timeout = 10m\n" +
            $"konsole.claude.path = \"{FakeClaudeCli.Path}\"\nkonsole.accounts = [{{ id = alpha, config-dir = \"{configDir}\" }}]\n" +
            "konsole.persistence { provider = \"PostgreSQL.15\", connection-string = \"Host=127.0.0.1;Port=1;Username=k;Password=p;Database=k\" }");
        await using var host = await HostProcess.StartAsync(config, waitReady: false, demo: false);
        var readiness = await (await host.Client.GetAsync("/readyz")).Content.ReadAsStringAsync();

        Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM
        await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        Assert.Equal(0, host.Process.ExitCode);
        Assert.Contains("the roles are being read back from the journal", readiness);
    }

    [Fact]
    public async Task After_a_sigterm_the_turn_that_finished_is_kept_and_the_prompt_still_queued_runs_after_the_restart()
    {
        var config = WriteConfig(DemoConfig + " konsole.shutdown.drain-timeout = 20s");
        await using (var host = await HostProcess.StartAsync(config))
        {
            // Quick turns (on the other account) keep nothing over a restart: one still queued is not run after it.
            await using var quickRunning = await OpenAsync(host.Client, "/api/quick-turn", "[[chunks:100:50]] quick");
            await quickRunning.NextOfTypeAsync("assistant", Timeout);
            await using var quickQueued = await OpenAsync(host.Client, "/api/quick-turn", "not run");
            Assert.Equal("queued", (await quickQueued.NextAsync(Timeout))!.Event);
            await using var running = await OpenAsync(host.Client, "/sessions/ui-1/hot-prompt", "[[chunks:60:50]] finishes");
            await running.NextOfTypeAsync("assistant", Timeout);
            await using var queued = await OpenAsync(host.Client, "/sessions/ui-2/hot-prompt", "after the restart");
            Assert.Equal("queued", (await queued.NextAsync(Timeout))!.Event);
            // The same, answered with its result line alone: it must not hold the host's stop up either.
            var json = new HttpRequestMessage(HttpMethod.Post, "/sessions/ui-3/hot-prompt") { Content = JsonContent.Create(new { prompt = "as json" }) };
            json.Headers.Accept.ParseAdd("application/json");
            var jsonAnswer = host.Client.SendAsync(json);
            await AwaitQueueDepthAsync(host.Client, 2);

            Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM
            Assert.Equal("echo: finishes", ResultOf((await running.ReadToEndAsync(Timeout))[^1]));
            var told = (await queued.ReadToEndAsync(Timeout))[^1]; // its stream ends at once; the prompt stays accepted
            Assert.Equal("error", told.Event);
            Assert.Contains("runs after the restart", told.Data);
            Assert.False(JsonDocument.Parse(told.Data).RootElement.GetProperty("resend").GetBoolean()); // sent again, it would run twice
            var quickTold = (await quickQueued.ReadToEndAsync(Timeout))[^1];
            Assert.Equal("error", quickTold.Event);
            Assert.Contains("this quick turn started; it was not run", quickTold.Data);
            Assert.True(JsonDocument.Parse(quickTold.Data).RootElement.GetProperty("resend").GetBoolean());
            var refused = await jsonAnswer.WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
            Assert.Contains("runs after the restart", problem.GetProperty("detail").GetString());
            Assert.False(problem.GetProperty("resend").GetBoolean());
            await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        }

        await using var next = await HostProcess.StartAsync(config);

        Assert.Equal(1, JsonDocument.Parse(await next.Client.GetStringAsync("/api/session/ui-1")).RootElement.GetProperty("turns").GetInt32());
        foreach (var (session, text) in new[] { ("ui-2", "after the restart"), ("ui-3", "as json") })
        {
            await using var events = await SseStream.OpenAsync(next.Client, new HttpRequestMessage(HttpMethod.Get, $"/api/session/{session}/events?after=0"), Timeout);
            Assert.Equal($"echo: {text}", ResultOf(await events.NextOfTypeAsync("result", Timeout)));
        }
    }

    [Fact]
    public async Task After_a_sigterm_a_prompt_that_started_runs_to_its_result_though_it_had_printed_nothing_yet()
    {
        var config = WriteConfig(DemoConfig + " konsole.shutdown.drain-timeout = 20s");
        await using var host = await HostProcess.StartAsync(config);
        await using var first = await OpenAsync(host.Client, "/api/quick-turn", "[[chunks:40:50]] first");
        await first.NextOfTypeAsync("assistant", Timeout);
        await using var second = await OpenAsync(host.Client, "/api/quick-turn", "[[quiet:3000]] second");
        Assert.Equal("queued", (await second.NextAsync(Timeout))!.Event);
        await first.ReadToEndAsync(Timeout);
        await AwaitAccountsAsync(host.Client, accounts => accounts.EnumerateArray().Sum(a => a.GetProperty("queueDepth").GetInt32()) == 0,
            "the second quick turn never started");

        Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM while its CLI has printed nothing of it yet

        // It was cut off as not started ("it was not run: send it again") while it ran on: sent again, it would have run twice.
        Assert.Equal("echo: second", ResultOf((await second.ReadToEndAsync(Timeout))[^1]));
        await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
    }

    /// <summary>Waits until the first account has <paramref name="depth"/> prompts queued.</summary>
    private static Task AwaitQueueDepthAsync(HttpClient client, int depth) =>
        AwaitAccountsAsync(client, accounts => accounts[0].GetProperty("queueDepth").GetInt32() >= depth, $"the account never had {depth} prompts queued");

    /// <summary>Waits until <c>/api/accounts</c>' <c>accounts</c> are as <paramref name="wanted"/> says; fails with <paramref name="never"/>.</summary>
    private static async Task AwaitAccountsAsync(HttpClient client, Func<JsonElement, bool> wanted, string never)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!wanted(JsonDocument.Parse(await client.GetStringAsync("/api/accounts")).RootElement.GetProperty("accounts")))
        {
            Assert.True(DateTime.UtcNow < deadline, never);
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Sigterm_also_lets_a_turn_whose_client_left_finish()
    {
        var config = WriteConfig(DemoConfig);
        await using (var host = await HostProcess.StartAsync(config))
        {
            await using (var stream = await OpenAsync(host.Client, "/sessions/ui-1/hot-prompt", "[[chunks:30:50]] nobody watches"))
                await stream.NextOfTypeAsync("assistant", Timeout); // and the client goes away

            Assert.Equal(0, Kill(host.Process.Id, 15)); // SIGTERM
            await host.Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
            Assert.Equal(0, host.Process.ExitCode);
        }

        await using var next = await HostProcess.StartAsync(config);

        var session = JsonDocument.Parse(await next.Client.GetStringAsync("/api/session/ui-1")).RootElement;
        Assert.Equal(1, session.GetProperty("turns").GetInt32()); // it finished, with its result, before the host stopped
    }

    public void Dispose() => _sandbox.Dispose();

    private static Task<SseStream> OpenAsync(HttpClient client, string path, string prompt) =>
        SseStream.OpenAsync(client, new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(new { prompt }) }, Timeout);

    private static async Task<IReadOnlyList<SseEvent>> RunAsync(HttpClient client, string path, string prompt)
    {
        await using var stream = await OpenAsync(client, path, prompt);
        var events = await stream.ReadToEndAsync(Timeout);
        Assert.True(events[^1].Event == "result", $"{events[^1].Event}: {events[^1].Data}");
        return events;
    }

    private static string? ResultOf(SseEvent result) => JsonDocument.Parse(result.Data).RootElement.GetProperty("result").GetString();

    private string DemoConfig => $"konsole {{ data-dir = \"{_sandbox.DataDir}\", gateway.urls = \"http://127.0.0.1:0\" }}";

    /// <summary>The host program started with --demo and a config file, once it listens and is ready.</summary>
    private sealed partial class HostProcess : IAsyncDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private HostProcess(Process process) => Process = process;

        public Process Process { get; }

        public HttpClient Client { get; private set; } = null!;

        public string Output
        {
            get { lock (_output) return _output.ToString(); }
        }

        /// <param name="demo">With --demo (FakeClaude accounts, state in the data dir's demo directory, whatever the file says of them).</param>
        public static async Task<HostProcess> StartAsync(string config, bool waitReady = true, IReadOnlyDictionary<string, string>? environment = null,
            bool demo = true)
        {
            var host = Launch(config, environment, demo);
            try
            {
                host.Client = new HttpClient { BaseAddress = await host._listening.Task.WaitAsync(Timeout) };
                var deadline = DateTime.UtcNow + Timeout;
                while (waitReady && !(await host.Client.GetAsync("/readyz")).IsSuccessStatusCode)
                {
                    Assert.True(DateTime.UtcNow < deadline, "the host did not become ready");
                    await Task.Delay(50);
                }
                return host;
            }
            catch
            {
                await host.DisposeAsync(); // a host that failed the test must not go on running, with its CLIs, under the next ones
                throw;
            }
        }

        /// <summary>The host program started, its output collected, without waiting for anything.</summary>
        public static HostProcess Launch(string config, IReadOnlyDictionary<string, string>? environment = null, bool demo = true)
        {
            var host = new HostProcess(Start(environment, [.. demo ? ["--demo"] : Array.Empty<string>(), "--config", config]));
            DataReceivedEventHandler collect = (_, e) =>
            {
                if (e.Data is null) return;
                lock (host._output) host._output.AppendLine(e.Data);
                if (ListeningOn().Match(e.Data) is { Success: true } m)
                    host._listening.TrySetResult(new Uri(m.Groups[1].Value));
            };
            host.Process.OutputDataReceived += collect;
            host.Process.ErrorDataReceived += collect;
            host.Process.BeginOutputReadLine();
            host.Process.BeginErrorReadLine();
            return host;
        }

        public async Task WaitForOutputAsync(string text)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, $"'{text}' never appeared in the host's output:\n{Output}");
                await Task.Delay(20);
            }
        }

        public async Task<List<Process>> CliProcessesAsync()
        {
            var accounts = JsonDocument.Parse(await Client.GetStringAsync("/api/accounts")).RootElement.GetProperty("accounts");
            return accounts.EnumerateArray().SelectMany(a => a.GetProperty("processes").EnumerateArray())
                .Select(p => Process.GetProcessById(p.GetProperty("pid").GetInt32())).ToList();
        }

        public async ValueTask DisposeAsync()
        {
            Client?.Dispose();
            if (!Process.HasExited)
            {
                Kill(Process.Id, 15);
                try
                {
                    await Process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
                }
                catch (OperationCanceledException)
                {
                    Process.Kill(entireProcessTree: true); // not rethrown: a failure that brought us here is the one to see
                }
            }
            Process.Dispose();
        }
    }

    /// <summary>A config file of <paramref name="hocon"/> on the sandbox's data dir (unless it names another): never the user's own.</summary>
    private string WriteConfig(string hocon)
    {
        var path = Path.Combine(_sandbox.Root, $"konsole-{Guid.NewGuid():N}.hocon");
        File.WriteAllText(path, $"konsole.data-dir = \"{_sandbox.DataDir}\"\n{hocon}");
        return path;
    }

    private static Process Start(params string[] args) => Start(null, args);

    private static Process Start(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "konsole.dll"));
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    private async Task<string> WriteCliAsync(string script)
    {
        var cli = Path.Combine(_sandbox.Root, "claude");
        await File.WriteAllTextAsync(cli, script);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(cli, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return cli;
    }

    private static Task<(int Exit, string Output)> RunToEndAsync(params string[] args) => RunToEndAsync(null, args);

    private static async Task<(int Exit, string Output)> RunToEndAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var process = Start(environment, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync(new CancellationTokenSource(Timeout).Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"Gateway listening on (http://\S+)")]
    private static partial Regex ListeningOn();
}
