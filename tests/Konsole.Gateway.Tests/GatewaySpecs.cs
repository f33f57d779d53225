using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>The v1 contract over HTTP, on FakeClaude accounts (alpha dashboard, beta quickturn).</summary>
public sealed class GatewaySpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    protected override string ExtraHocon => "konsole.queue.max-depth = 2";

    [Fact]
    public async Task Accounts_list_every_account_with_its_role_state_and_login()
    {
        var accounts = (await GetJsonAsync("/api/accounts")).GetProperty("accounts").EnumerateArray().ToList();

        Assert.Equal(["alpha", "beta"], accounts.Select(a => a.GetProperty("id").GetString()));
        Assert.Equal(["dashboard", "quickturn"], accounts.Select(a => a.GetProperty("role").GetString()));
        var alpha = accounts[0];
        Assert.Equal("alpha.test", alpha.GetProperty("label").GetString());
        Assert.False(alpha.GetProperty("sessionBusy").GetBoolean());
        Assert.Equal(JsonValueKind.Null, alpha.GetProperty("activeSessionId").ValueKind);
        Assert.Equal("20x", alpha.GetProperty("rateLimitTier").GetString());
        Assert.Matches(@"^2[34]h \d{1,2}m$", alpha.GetProperty("expiresIn").GetString());
        Assert.Equal("idle", alpha.GetProperty("state").GetString());
        Assert.Equal(0, alpha.GetProperty("queueDepth").GetInt32());
        Assert.Equal("allowed", alpha.GetProperty("rateLimit").GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, alpha.GetProperty("rateLimit").GetProperty("resetsAt").ValueKind);
    }

    [Fact]
    public async Task Status_and_hot_status_show_the_roles_and_the_warm_processes()
    {
        await using var running = await PostPromptAsync("/sessions/ui-busy/hot-prompt", $"{Long} busy");
        await running.NextOfTypeAsync("assistant", Timeout);

        var status = await GetJsonAsync("/api/accounts/status");
        var hot = await GetJsonAsync("/hot/status");

        Assert.Equal("""{"accountId":"alpha","busy":true,"sessionId":"ui-busy"}""", status.GetProperty("dashboard").GetRawText());
        Assert.Equal("""{"accountId":"beta","busy":false,"sessionId":null}""", status.GetProperty("quickTurn").GetRawText());
        Assert.Equal("""{"poolSize":4,"targetSize":4,"activeSessions":1}""", hot.GetRawText());
        Assert.Equal(HttpStatusCode.Accepted, (await Client.PostAsync("/api/session/ui-busy/interrupt", null)).StatusCode);
    }

    [Fact]
    public async Task A_hot_prompt_streams_the_clis_lines_verbatim_numbered_and_ends_with_the_result()
    {
        var events = await RunAsync("/sessions/ui-1/hot-prompt", "Remember 42");
        var second = await RunAsync("/sessions/ui-1/hot-prompt", "What number?");

        Assert.Equal(["command_lifecycle", "command_lifecycle", "system", "assistant", "rate_limit_event", "result"], events.Select(e => e.Event));
        Assert.Equal(Enumerable.Range(1, events.Count + second.Count).Select(i => i.ToString()), events.Concat(second).Select(e => e.Id));
        Assert.All(events, e => Assert.Equal(e.Event, JsonDocument.Parse(e.Data).RootElement.GetProperty("type").GetString()));
        Assert.StartsWith("{\"type\":\"result\",\"subtype\":\"success\"", events[^1].Data); // the CLI's own line, not re-serialised
        Assert.Equal("echo: What number? [history: Remember 42]", ResultText(second));
    }

    [Fact]
    public async Task Hostile_cli_lines_never_break_the_stream_and_a_type_with_line_breaks_stays_one_event()
    {
        var events = await RunAsync("/sessions/ui-hostile/hot-prompt", "[[garbage:24]] survived");

        Assert.Equal("echo: survived", ResultText(events));
        Assert.Equal(2, events.Count(e => e.Event == "odd data: forged type"));
        Assert.DoesNotContain(events, e => e.Data == "forged" || e.Event.Contains('\n'));
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => i.ToString()), events.Select(e => e.Id));
    }

    [Fact]
    public async Task With_accept_json_a_prompt_answers_its_result_line_alone()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/quick-turn") { Content = JsonContent.Create(new { prompt = "hi there" }) };
        request.Headers.Accept.ParseAdd("application/json");

        var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var result = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(("result", "echo: hi there"), (result.GetProperty("type").GetString(), result.GetProperty("result").GetString()));
    }

    [Fact]
    public async Task Quick_turns_run_without_tools_and_without_history_on_the_quickturn_account()
    {
        var first = await RunAsync("/api/quick-turn", "Remember 42 [[env:CLAUDE_CONFIG_DIR]]");
        var second = await RunAsync("/api/quick-turn", "What number?");

        Assert.Contains(Sandbox.Accounts[1].ConfigDir, ResultText(first));
        Assert.Equal("[]", JsonDocument.Parse(first.Single(e => e.Event == "system").Data).RootElement.GetProperty("tools").GetRawText());
        Assert.Equal("echo: What number?", ResultText(second));
    }

    [Fact]
    public async Task A_switch_answers_with_the_new_roles_reports_them_on_api_events_and_routes_later_prompts_by_them()
    {
        await using var events = await GetEventsAsync("/api/events");
        var first = await RunAsync("/sessions/ui-1/hot-prompt", "Remember 42");

        var switched = await Client.PostAsync("/api/accounts/switch", null);

        Assert.Equal(HttpStatusCode.OK, switched.StatusCode);
        var roles = JsonDocument.Parse(await switched.Content.ReadAsStringAsync()).RootElement.GetProperty("accounts").EnumerateArray()
            .Select(a => (a.GetProperty("id").GetString(), a.GetProperty("role").GetString()));
        Assert.Equal([("alpha", "quickturn"), ("beta", "dashboard")], roles);
        var swapped = await events.NextOfTypeAsync("accounts.swapped", Timeout);
        Assert.Equal(("beta", "alpha", "alpha"), (Field(swapped, "dashboard"), Field(swapped, "quickTurn"),
            JsonDocument.Parse(swapped.Data).RootElement.GetProperty("previous").GetProperty("dashboard").GetString()));
        var second = await RunAsync("/sessions/ui-1/hot-prompt", "What number? [[env:CLAUDE_CONFIG_DIR]]");
        Assert.StartsWith("echo: What number? [history: Remember 42]", ResultText(second));
        Assert.Contains(Sandbox.Accounts[1].ConfigDir, ResultText(second));
        var named = await Client.PostAsJsonAsync("/api/accounts/switch", new { dashboard = "alpha" });
        Assert.Equal("dashboard", JsonDocument.Parse(await named.Content.ReadAsStringAsync()).RootElement.GetProperty("accounts")[0].GetProperty("role").GetString());
        Assert.NotNull(first);
    }

    [Fact]
    public async Task A_hot_prompt_to_a_session_of_another_type_is_refused_with_409()
    {
        var created = await Client.PostAsJsonAsync("/api/session", new { type = "chat" });
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!;

        var refused = await Client.PostAsJsonAsync($"/sessions/{id}/hot-prompt", new { prompt = "hi" });

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("session_type_mismatch", problem.GetProperty("code").GetString());
        Assert.Equal($"session {id} is a chat session, not a full one", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task The_shutdown_phases_that_stop_the_clis_outlast_a_long_stop_grace()
    {
        using var own = KonsoleSandbox.Create(1); // a data dir of its own: a host starting on another's would reap its CLIs
        await using var host = await GatewayHost.StartAsync(own.Hocon(FakeClaudeCli.Path, extraHocon: "konsole.claude.stop-grace = 40s"));
        var phases = host.System.Settings.Config.GetConfig("akka.coordinated-shutdown.phases");

        // A CLI that ignores the end of its input is killed after stop-grace + 7 s; the phases waiting for it give it 55 s.
        Assert.Equal(TimeSpan.FromSeconds(55), phases.GetTimeSpan("service-stop.timeout"));
        Assert.Equal(TimeSpan.FromSeconds(55), phases.GetTimeSpan("before-actor-system-terminate.timeout"));
    }

    [Fact]
    public async Task Readiness_waits_for_every_hot_process_and_says_which_accounts_are_still_starting()
    {
        using var own = KonsoleSandbox.Create(1);
        var silent = Path.Combine(own.Root, "claude"); // a CLI that never answers initialize
        await File.WriteAllTextAsync(silent, "#!/bin/sh\nexec sleep 600\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(silent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await using var host = await GatewayHost.StartAsync(own.Hocon(silent, extraHocon: "konsole.claude.stop-grace = 1s"));

        // At first the roles and sessions may still be read back too; then only the silent CLI's account is left.
        var deadline = DateTime.UtcNow + Timeout;
        var waits = new List<string?>();
        while (waits.LastOrDefault() != "hot processes still starting: alpha" && DateTime.UtcNow < deadline)
        {
            var answer = await host.Client.GetAsync("/readyz");
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "application/problem+json"), (answer.StatusCode, answer.Content.Headers.ContentType?.MediaType));
            var problem = JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("not_ready", problem.GetProperty("code").GetString());
            waits.Add(problem.GetProperty("detail").GetString());
            await Task.Delay(20);
        }

        Assert.Equal("hot processes still starting: alpha", waits[^1]); // and 503 all along
    }

    [Fact]
    public async Task A_session_lives_from_create_to_delete()
    {
        await using var events = await GetEventsAsync("/api/events");
        var created = await Client.PostAsJsonAsync("/api/session", new { type = "full", provider = "claude" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!;
        Assert.Equal($"/api/session/{id}", created.Headers.Location?.ToString());
        Assert.Equal(id, Field(await events.NextOfTypeAsync("session.created", Timeout), "sessionId"));

        var turn = await RunAsync($"/api/session/{id}/prompt", "hello");
        var info = await GetJsonAsync($"/api/session/{id}");

        Assert.Equal(id, info.GetProperty("sessionId").GetString());
        Assert.Equal("full", info.GetProperty("type").GetString());
        Assert.Equal("alpha", info.GetProperty("accountId").GetString());
        Assert.Equal("idle", info.GetProperty("state").GetString());
        Assert.Equal(Field(turn[^1], "session_id"), info.GetProperty("claudeSessionId").GetString());
        Assert.Equal(1, info.GetProperty("turns").GetInt32());
        Assert.Equal(turn.Count, info.GetProperty("lastEventId").GetInt32());
        Assert.Equal(JsonValueKind.Null, info.GetProperty("model").ValueKind); // the account's
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync($"/api/session/{id}")).StatusCode);
        Assert.Equal(id, Field(await events.NextOfTypeAsync("session.closed", Timeout), "sessionId"));
        Assert.Equal(HttpStatusCode.NotFound, (await Client.DeleteAsync($"/api/session/{id}-other")).StatusCode);
        var late = await Client.PostAsJsonAsync($"/api/session/{id}/prompt", new { prompt = "late" });
        Assert.Equal(HttpStatusCode.Conflict, late.StatusCode);
        // Closed, it is gone: a second delete and a look-up are 404s, their code saying why.
        foreach (var gone in new[]
                 {
                     await Client.DeleteAsync($"/api/session/{id}"), await Client.GetAsync($"/api/session/{id}"),
                     await Client.GetAsync($"/api/session/{id}/events"), await Client.PostAsync($"/api/session/{id}/interrupt", null),
                 })
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
            Assert.Equal("session_closed", JsonDocument.Parse(await gone.Content.ReadAsStringAsync()).RootElement.GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task A_session_created_with_a_model_runs_its_turns_on_it_and_a_model_the_cli_refuses_is_a_422()
    {
        var id = await CreateSessionAsync(new { type = "full", model = "fake-opus" });
        var refusing = await CreateSessionAsync(new { type = "full", model = "unknown-model" });

        var turn = await RunAsync($"/api/session/{id}/prompt", "hello");
        var ui = await RunAsync("/sessions/ui-no-model/hot-prompt", "on the account's model");
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/session/{refusing}/prompt") { Content = JsonContent.Create(new { prompt = "hi" }) };
        request.Headers.Accept.ParseAdd("application/json");
        var refused = await Client.SendAsync(request);
        var again = await RunAsync($"/api/session/{id}/prompt", "again");

        Assert.Equal("fake-opus", (await GetJsonAsync($"/api/session/{id}")).GetProperty("model").GetString());
        Assert.Equal(["fake-opus", "fake-claude", "fake-opus"], new[] { turn, ui, again }.Select(t => Field(t.Single(e => e.Event == "system"), "model")));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal("model_unavailable", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("code").GetString());
    }

    private async Task<string> CreateSessionAsync(object body)
    {
        var created = await Client.PostAsJsonAsync("/api/session", body);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!;
    }

    [Fact]
    public async Task Deleting_a_session_ends_its_running_prompt_with_session_closed()
    {
        await using var running = await PostPromptAsync("/sessions/ui-del/hot-prompt", $"{Long} busy");
        await running.NextOfTypeAsync("assistant", Timeout);

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/api/session/ui-del")).StatusCode);

        var rest = await running.ReadToEndAsync(Timeout);
        Assert.Equal(("error", "session_closed"), (rest[^1].Event, Field(rest[^1], "code")));
    }

    [Fact]
    public async Task A_sessions_events_replay_from_last_event_id_or_after_then_follow_live()
    {
        var first = await RunAsync("/sessions/ui-r/hot-prompt", "one");

        await using (var replay = await GetEventsAsync("/api/session/ui-r/events", lastEventId: "2"))
        {
            var replayed = new List<SseEvent>();
            for (var i = 2; i < first.Count; i++)
                replayed.Add((await replay.NextAsync(Timeout))!);
            Assert.Equal(first.Skip(2), replayed);
            var second = await RunAsync("/sessions/ui-r/hot-prompt", "two");
            for (var i = 0; i < second.Count; i++)
                Assert.Equal(second[i], await replay.NextAsync(Timeout));
        }
        await using var after = await GetEventsAsync($"/api/session/ui-r/events?after={first.Count - 1}");
        Assert.Equal(first[^1], await after.NextAsync(Timeout));
        Assert.Equal("1", after.Response.Headers.GetValues("Konsole-First-Event-Id").Single());
        await using var emptyHeader = await GetEventsAsync($"/api/session/ui-r/events?after={first.Count - 1}", lastEventId: ""); // none seen yet
        Assert.Equal(first[^1], await emptyHeader.NextAsync(Timeout));
    }

    [Fact]
    public async Task An_event_id_at_or_beyond_the_latest_up_to_long_max_replays_nothing_then_follows_live()
    {
        var first = await RunAsync("/sessions/ui-max/hot-prompt", "one");
        await using var header = await GetEventsAsync("/api/session/ui-max/events", lastEventId: long.MaxValue.ToString());
        await using var query = await GetEventsAsync($"/api/session/ui-max/events?after={first.Count}");

        var second = await RunAsync("/sessions/ui-max/hot-prompt", "two");

        Assert.Equal(second[0], await header.NextAsync(Timeout));
        Assert.Equal(second[0], await query.NextAsync(Timeout));
    }

    [Fact]
    public async Task A_slow_client_is_held_back_but_loses_no_event_and_the_turn_runs_on()
    {
        await using var stream = await PostPromptAsync("/sessions/ui-slow/hot-prompt", "[[chunks:3000:0]] many");
        await stream.NextAsync(Timeout);

        // The client reads nothing more until the turn has ended on its account.
        var deadline = DateTime.UtcNow + Timeout;
        while ((await GetJsonAsync("/api/session/ui-slow")).GetProperty("state").GetString() != "idle" && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        var events = await stream.ReadToEndAsync(Timeout);

        Assert.Equal(3000, events.Count(e => e.Event == "assistant") - 1);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => i.ToString()), events.Select(e => e.Id));
        Assert.Equal("result", events[^1].Event);
    }

    [Fact]
    public async Task A_client_that_disconnects_does_not_stop_the_turn_and_finds_its_end_in_the_session()
    {
        await using (var stream = await PostPromptAsync("/sessions/ui-gone/hot-prompt", "[[chunks:20:20]] goes away"))
            await stream.NextOfTypeAsync("assistant", Timeout);

        await using var events = await GetEventsAsync("/api/session/ui-gone/events?after=0");
        var result = await events.NextOfTypeAsync("result", Timeout);

        Assert.Equal("echo: goes away", JsonDocument.Parse(result.Data).RootElement.GetProperty("result").GetString());
        Assert.Equal(20, events.Received.Count(e => e.Event == "assistant") - 1);
    }

    [Fact]
    public async Task Prompts_beyond_the_queue_get_queued_events_and_past_its_bound_a_429_with_retry_after()
    {
        await using var running = await PostPromptAsync("/sessions/q-1/hot-prompt", $"{Long} busy");
        await running.NextOfTypeAsync("assistant", Timeout);
        await using var second = await PostPromptAsync("/sessions/q-2/hot-prompt", "second");
        await using var third = await PostPromptAsync("/sessions/q-3/hot-prompt", "third");

        var queued = await third.NextAsync(Timeout);
        var full = await Client.PostAsJsonAsync("/sessions/q-4/hot-prompt", new { prompt = "fourth" });

        Assert.Equal(("queued", "2", "alpha"), (queued!.Event, Field(queued, "position"), Field(queued, "accountId")));
        Assert.Equal(HttpStatusCode.TooManyRequests, full.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(Problems.RetryAfterSeconds), full.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", full.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Accepted, (await Client.PostAsync("/api/session/q-1/interrupt", null)).StatusCode);
        Assert.Equal("echo: third", ResultText(await third.ReadToEndAsync(Timeout)));
    }

    [Fact]
    public async Task Rate_limited_accounts_are_reported_and_with_none_left_a_prompt_gets_503_with_retry_after()
    {
        await using var events = await GetEventsAsync("/api/events");

        await RunAsync("/sessions/ui-1/hot-prompt", "[[rate-limit]] alpha over");
        var limited = await events.NextOfTypeAsync("account.rate-limited", Timeout);
        Assert.Equal(("alpha", "rejected"), (Field(limited, "accountId"), Field(limited, "status")));
        var moved = await RunAsync("/sessions/ui-1/hot-prompt", "still served [[env:CLAUDE_CONFIG_DIR]]");
        Assert.Contains(Sandbox.Accounts[1].ConfigDir, ResultText(moved));
        await RunAsync("/api/quick-turn", "[[rate-limit]] beta over");
        await events.NextOfTypeAsync("account.rate-limited", Timeout);

        var deadline = DateTime.UtcNow + Timeout;
        while ((await GetJsonAsync("/api/accounts")).GetProperty("accounts").EnumerateArray().Any(a => a.GetProperty("state").GetString() != "rate-limited"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the accounts never both showed rate-limited");
            await Task.Delay(20);
        }
        var refused = await Client.PostAsJsonAsync("/sessions/ui-2/hot-prompt", new { prompt = "anyone?" });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.InRange(refused.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61));
        var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("account_unavailable", problem.GetProperty("code").GetString());
        var alpha = (await GetJsonAsync("/api/accounts")).GetProperty("accounts")[0];
        Assert.Equal("rejected", alpha.GetProperty("rateLimit").GetProperty("status").GetString());
        Assert.StartsWith("rate-limited until ", alpha.GetProperty("stateReason").GetString());
    }

    [Fact]
    public async Task A_chat_sessions_prompts_run_without_tools_each_without_the_one_before()
    {
        var created = await Client.PostAsJsonAsync("/api/session", new { type = "chat" });
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!;

        var first = await RunAsync($"/api/session/{id}/prompt", "Remember 42");
        var second = await RunAsync($"/api/session/{id}/prompt", "What number?");

        Assert.Equal(("echo: Remember 42", "echo: What number?"), (ResultText(first), ResultText(second)));
        Assert.Equal(([], []), (ToolsOf(first), ToolsOf(second)));
        Assert.Equal(2, (await GetJsonAsync($"/api/session/{id}")).GetProperty("turns").GetInt32());
    }

    private static string[] ToolsOf(IReadOnlyList<SseEvent> turn) =>
        JsonDocument.Parse(turn.Single(e => e.Event == "system").Data).RootElement.GetProperty("tools").EnumerateArray()
            .Select(t => t.GetString()!).ToArray();

    [Fact]
    public async Task Worker_sessions_run_on_a_process_of_their_own()
    {
        var created = await Client.PostAsJsonAsync("/api/session", new { type = "worker" });
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("sessionId").GetString()!;

        var turn = await RunAsync($"/api/session/{id}/prompt", "background job");

        Assert.Equal("echo: background job", ResultText(turn));
        Assert.Contains("Bash", ToolsOf(turn)); // all of them, as a dashboard turn's
        var beta = (await GetJsonAsync("/api/accounts")).GetProperty("accounts")[1];
        var worker = beta.GetProperty("processes").EnumerateArray().Single(p => p.GetProperty("mode").GetString() == "worker");
        Assert.Equal(id, worker.GetProperty("sessionId").GetString());
        Assert.Equal("beta", (await GetJsonAsync($"/api/session/{id}")).GetProperty("accountId").GetString());
    }

    [Fact]
    public async Task Health_and_readiness_need_no_token()
    {
        Assert.Equal("""{"status":"ok"}""", (await GetJsonAsync("/healthz")).GetRawText());
        Assert.Equal("""{"status":"ready"}""", (await GetJsonAsync("/readyz")).GetRawText());
    }

    [Fact]
    public async Task Foreign_host_headers_and_foreign_browser_origins_are_refused()
    {
        var rebound = new HttpRequestMessage(HttpMethod.Get, "/api/accounts");
        rebound.Headers.Host = "evil.example";
        var crossSite = new HttpRequestMessage(HttpMethod.Post, "/api/accounts/switch");
        crossSite.Headers.Add("Origin", "http://evil.example");
        var sameSite = new HttpRequestMessage(HttpMethod.Get, "/api/accounts");
        sameSite.Headers.Add("Origin", Client.BaseAddress!.GetLeftPart(UriPartial.Authority));

        var host = await Client.SendAsync(rebound);
        var origin = await Client.SendAsync(crossSite);

        Assert.Equal((HttpStatusCode.BadRequest, "application/problem+json"), (host.StatusCode, host.Content.Headers.ContentType?.MediaType));
        Assert.Equal((HttpStatusCode.Forbidden, "application/problem+json"), (origin.StatusCode, origin.Content.Headers.ContentType?.MediaType));
        Assert.Equal(HttpStatusCode.OK, (await Client.SendAsync(sameSite)).StatusCode);
        Assert.Equal("dashboard", (await GetJsonAsync("/api/accounts")).GetProperty("accounts")[0].GetProperty("role").GetString()); // no switch happened
    }
}
