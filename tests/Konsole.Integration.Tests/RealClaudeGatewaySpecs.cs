using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;

namespace Konsole.Integration.Tests;

/// <summary>
/// The host as it runs (actors and HTTP gateway on a real Kestrel, port 0) over the real Claude Code CLI talking to
/// the fake Messages API, read with a real HTTP client parsing SSE. Accounts alpha (dashboard) and beta (quickturn),
/// each with its own OAuth login; the gateway has a bearer token.
/// </summary>
[Collection(RealClaudeCollection.Name)]
public sealed class RealClaudeGatewaySpecs(ITestOutputHelper output, RealClaudeFixture cli) : IAsyncLifetime
{
    private const string Token = "gateway-token-5d1e";
    private static readonly TimeSpan Turn = TimeSpan.FromSeconds(60);
    private readonly KonsoleSandbox _sandbox = KonsoleSandbox.Create(2);
    private FakeMessagesApi _api = null!;
    private GatewayHost _host = null!;
    private EnvironmentScope? _hostCredentials;

    private HttpClient Client => _host.Client;

    public async Task InitializeAsync()
    {
        _hostCredentials = EnvironmentScope.Set(("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-host-token-must-not-leak"), ("CLAUDECODE", "1"));
        _api = await FakeMessagesApi.StartAsync();
        _host = await GatewayHost.StartAsync(
            _sandbox.Hocon(cli.Path, FakeMessagesApi.CliEnvironment(_api.BaseUrl), $"konsole.gateway.auth-token = \"{Token}\""), output);
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        var deadline = DateTime.UtcNow + Turn;
        while ((await Client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the host did not become ready");
            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _api.DisposeAsync();
        _sandbox.Dispose();
        _hostCredentials?.Dispose();
    }

    [Fact]
    public async Task A_hot_prompt_remembers_the_previous_turn_of_its_session()
    {
        await RunAsync("/sessions/ui-1/hot-prompt", "Remember 42");
        var second = await RunAsync("/sessions/ui-1/hot-prompt", "What number?");

        Assert.Equal("result", second[^1].Event);
        var request = await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn);
        Assert.Contains("Remember 42", request.UserTexts);
        Assert.Equal($"Bearer {_sandbox.Accounts[0].AccessToken}", request.Authorization);
    }

    [Fact]
    public async Task Quick_turns_run_with_zero_tools_and_no_history_on_the_quickturn_account()
    {
        await RunAsync("/api/quick-turn", "Remember 42");
        await RunAsync("/api/quick-turn", "What number?");

        var first = await _api.WaitForRequestAsync(r => r.LastUserText == "Remember 42", Turn);
        var second = await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn);
        Assert.Equal((0, 0), (first.ToolCount, second.ToolCount));
        Assert.DoesNotContain("Remember 42", second.UserTexts);
        Assert.Equal($"Bearer {_sandbox.Accounts[1].AccessToken}", second.Authorization);
    }

    [Fact]
    public async Task After_a_switch_traffic_follows_the_new_roles_the_ui_sessions_conversation_continues_and_api_events_report_it()
    {
        await using var events = await SseStream.OpenAsync(Client, new HttpRequestMessage(HttpMethod.Get, "/api/events"), Turn);
        await RunAsync("/sessions/ui-1/hot-prompt", "Remember 42");

        var switched = await Client.PostAsync("/api/accounts/switch", null);

        Assert.Equal(HttpStatusCode.OK, switched.StatusCode);
        var swapped = await events.NextOfTypeAsync("accounts.swapped", Turn);
        Assert.Equal("beta", JsonDocument.Parse(swapped.Data).RootElement.GetProperty("dashboard").GetString());
        await RunAsync("/sessions/ui-1/hot-prompt", "What number?");
        await RunAsync("/api/quick-turn", "quick after the switch");
        var continued = await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn);
        Assert.Equal($"Bearer {_sandbox.Accounts[1].AccessToken}", continued.Authorization); // beta now has the dashboard
        Assert.Contains("Remember 42", continued.UserTexts); // and the conversation came along
        Assert.True(continued.ToolCount > 0);
        var quick = await _api.WaitForRequestAsync(r => r.LastUserText == "quick after the switch", Turn);
        Assert.Equal(($"Bearer {_sandbox.Accounts[0].AccessToken}", 0), (quick.Authorization, quick.ToolCount));
    }

    [Fact]
    public async Task Four_concurrent_prompts_on_one_account_all_complete_one_at_a_time_and_the_waiting_ones_hear_queued()
    {
        // The first runs for 2 s, so the other three arrive while it runs however slowly the machine sends them.
        var first = await OpenAsync("/sessions/ui-c1/hot-prompt", "[[api-slow:50:40]] concurrent 1");
        var streams = new[] { first }.Concat(await Task.WhenAll(Enumerable.Range(2, 3).Select(i => OpenAsync($"/sessions/ui-c{i}/hot-prompt", $"[[api-slow:5:40]] concurrent {i}")))).ToArray();
        try
        {
            var turns = await Task.WhenAll(streams.Select(s => s.ReadToEndAsync(Turn)));

            Assert.All(turns, t => Assert.Equal("result", t[^1].Event));
            Assert.All(turns, t => Assert.False(JsonDocument.Parse(t[^1].Data).RootElement.GetProperty("is_error").GetBoolean()));
            Assert.Equal(3, turns.Count(t => t.Any(e => e.Event == "queued")));
            Assert.All(turns.SelectMany(t => t.Where(e => e.Event == "queued")), q =>
                Assert.Equal("alpha", JsonDocument.Parse(q.Data).RootElement.GetProperty("accountId").GetString()));
            Assert.Equal(4, _api.Requests.Count(r => r.LastUserText.Contains("concurrent")));
            Assert.Equal(1, _api.MaxConcurrentRequests);
        }
        finally
        {
            foreach (var stream in streams)
                await stream.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_kill_9_mid_turn_ends_the_stream_with_process_crashed_and_the_next_prompt_continues_the_conversation()
    {
        await RunAsync("/sessions/ui-k/hot-prompt", "Remember 42");
        await using var slow = await OpenAsync("/sessions/ui-k/hot-prompt", "[[api-slow:400:50]] a long answer");
        await slow.NextOfTypeAsync("system", Turn);
        await _api.WaitForRequestAsync(r => r.LastUserText.Contains("a long answer"), Turn);
        var accounts = JsonDocument.Parse(await Client.GetStringAsync("/api/accounts")).RootElement.GetProperty("accounts");
        var pid = accounts[0].GetProperty("processes").EnumerateArray().Single(p => p.GetProperty("mode").GetString() == "full").GetProperty("pid").GetInt32();

        Process.GetProcessById(pid).Kill(); // SIGKILL

        var ended = await slow.ReadToEndAsync(Turn);
        Assert.Equal("error", ended[^1].Event);
        Assert.Equal("process_crashed", JsonDocument.Parse(ended[^1].Data).RootElement.GetProperty("code").GetString());
        var next = await RunAsync("/sessions/ui-k/hot-prompt", "What number?");
        Assert.False(JsonDocument.Parse(next[^1].Data).RootElement.GetProperty("is_error").GetBoolean(), next[^1].Data);
        Assert.Contains("Remember 42", (await _api.WaitForRequestAsync(r => r.LastUserText == "What number?", Turn)).UserTexts);
    }

    [Fact]
    public async Task After_a_disconnect_the_sessions_events_replay_from_last_event_id_with_none_missing()
    {
        await RunAsync("/sessions/ui-r/hot-prompt", "first turn");
        List<SseEvent> before;
        await using (var stream = await OpenAsync("/sessions/ui-r/hot-prompt", "[[api-slow:20:50]] second turn"))
        {
            await stream.NextOfTypeAsync("system", Turn);
            before = [.. stream.Received];
        } // the client goes away mid-turn

        var replay = new HttpRequestMessage(HttpMethod.Get, "/api/session/ui-r/events");
        replay.Headers.Add("Last-Event-ID", before[^1].Id);
        await using var events = await SseStream.OpenAsync(Client, replay, Turn);
        await events.NextOfTypeAsync("result", Turn);

        var all = before.Concat(events.Received).ToList();
        var firstId = long.Parse(before[0].Id!);
        Assert.Equal(Enumerable.Range(0, all.Count).Select(i => (firstId + i).ToString()), all.Select(e => e.Id));
        Assert.Equal("result", all[^1].Event);
        Assert.Contains("second turn", JsonDocument.Parse(all[^1].Data).RootElement.GetProperty("result").GetString());
    }

    [Fact]
    public async Task A_session_with_a_model_runs_on_it_and_the_next_ui_session_on_the_same_process_on_the_clis_own()
    {
        var created = await Client.PostAsJsonAsync("/api/session", new { type = "full", model = "claude-haiku-4-5" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString();

        await RunAsync($"/api/session/{id}/prompt", "Which model?");
        await RunAsync("/sessions/ui-default/hot-prompt", "And now?");

        var chosen = await _api.WaitForRequestAsync(r => r.LastUserText == "Which model?", Turn);
        var own = await _api.WaitForRequestAsync(r => r.LastUserText == "And now?", Turn);
        Assert.Equal("claude-haiku-4-5", chosen.Model);
        Assert.NotEqual("claude-haiku-4-5", own.Model);
        Assert.False(string.IsNullOrEmpty(own.Model));
    }

    [Fact]
    public async Task Without_the_token_the_api_answers_401()
    {
        using var anonymous = new HttpClient { BaseAddress = Client.BaseAddress };

        var response = await anonymous.PostAsJsonAsync("/sessions/ui-1/hot-prompt", new { prompt = "hi" });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Empty(_api.Requests);
    }

    private Task<SseStream> OpenAsync(string path, string prompt) =>
        SseStream.OpenAsync(Client, new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(new { prompt }) }, Turn);

    private async Task<IReadOnlyList<SseEvent>> RunAsync(string path, string prompt)
    {
        await using var stream = await OpenAsync(path, prompt);
        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);
        var events = await stream.ReadToEndAsync(Turn);
        Assert.True(events[^1].Event == "result", $"'{prompt}' ended with {events[^1].Event}: {events[^1].Data}");
        return events;
    }
}
