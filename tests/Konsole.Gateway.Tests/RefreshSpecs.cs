using System.Net;
using System.Text.Json;
using Akka.Actor;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>POST /api/accounts/{id}/refresh against a fake token endpoint with single-use refresh tokens.</summary>
public sealed class RefreshSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    private FakeTokenEndpoint _tokens = null!;

    protected override string ExtraHocon => $"konsole.oauth.token-endpoint = \"{_tokens.Url}\"";

    public override async Task InitializeAsync()
    {
        _tokens = await FakeTokenEndpoint.StartAsync();
        _tokens.Accept(Sandbox.Accounts[1].RefreshToken);
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _tokens.DisposeAsync();
    }

    [Fact]
    public async Task A_refresh_is_accepted_at_once_and_reported_on_api_events_when_done()
    {
        await using var events = await GetEventsAsync("/api/events");

        var response = await Client.PostAsync("/api/accounts/beta/refresh", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var refreshed = await events.NextOfTypeAsync("oauth.refreshed", Timeout);
        Assert.Equal("beta", Field(refreshed, "accountId"));
        Assert.Equal(200, Assert.Single(_tokens.Requests).Status);
        var credentials = await File.ReadAllTextAsync(Path.Combine(Sandbox.Accounts[1].ConfigDir, ".credentials.json"));
        Assert.Contains(_tokens.LatestAccessToken!, credentials);
        Assert.Equal("echo: after", ResultText(await RunAsync("/api/quick-turn", "after")));

        // What the journal holds (roles, sessions, prompts: SQLite in the data dir, its WAL file too) has no token in it.
        Assert.Equal("echo: journaled", ResultText(await RunAsync("/sessions/ui-1/hot-prompt", "journaled")));
        Assert.Equal(HttpStatusCode.OK, (await Client.PostAsync("/api/accounts/switch", null)).StatusCode);
        var stored = Directory.EnumerateFiles(Sandbox.DataDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, ReadShared);
        Assert.Contains(stored, f => f.Key.EndsWith(".db-wal", StringComparison.Ordinal) && f.Value.Contains("journaled"));
        foreach (var token in Sandbox.Accounts.SelectMany(a => new[] { a.AccessToken, a.RefreshToken })
                     .Concat(_tokens.Issued.SelectMany(t => new[] { t.AccessToken, t.RefreshToken }).OfType<string>()))
            Assert.DoesNotContain(stored, f => f.Value.Contains(token, StringComparison.Ordinal));
    }

    private static string ReadShared(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(file, System.Text.Encoding.Latin1);
        return reader.ReadToEnd();
    }

    [Fact]
    public async Task A_refresh_for_an_account_whose_actor_stopped_is_a_503_at_once()
    {
        Host.System.ActorSelection("/user/roles/alpha").Tell(Kill.Instance);
        var deadline = DateTime.UtcNow + Timeout;
        while (await StateOfAsync("alpha") != "failed" && DateTime.UtcNow < deadline)
            await Task.Delay(50); // polled, as AwaitAssert would: the router reports it failed once it saw it stop
        Assert.Equal("failed", await StateOfAsync("alpha"));

        var response = await Client.PostAsync("/api/accounts/alpha/refresh", null);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("account_unavailable", problem.GetProperty("code").GetString());
        Assert.Contains("alpha stopped", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_refused_refresh_is_reported_without_the_token()
    {
        await using var events = await GetEventsAsync("/api/events");

        Assert.Equal(HttpStatusCode.Accepted, (await Client.PostAsync("/api/accounts/alpha/refresh", null)).StatusCode);

        var failed = await events.NextOfTypeAsync("oauth.refresh-failed", Timeout);
        Assert.Equal(("alpha", "False"), (Field(failed, "accountId"), Field(failed, "retryable")));
        Assert.DoesNotContain("sk-ant", failed.Data);
        Assert.Equal(JsonValueKind.String, JsonDocument.Parse(failed.Data).RootElement.GetProperty("reason").ValueKind);
    }

    private async Task<string?> StateOfAsync(string accountId) =>
        (await GetJsonAsync("/api/accounts")).GetProperty("accounts").EnumerateArray()
            .Single(a => a.GetProperty("id").GetString() == accountId).GetProperty("state").GetString();
}
