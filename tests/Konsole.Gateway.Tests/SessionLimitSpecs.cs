using System.Net;
using System.Net.Http.Json;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

public sealed class SessionLimitSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    protected override string ExtraHocon => "konsole.sessions.max-open = 2";

    [Fact]
    public async Task Beyond_max_open_a_new_session_gets_429_too_many_sessions_and_a_closed_one_frees_its_place()
    {
        var first = await CreateAsync("full");
        Assert.Equal("result", (await RunAsync("/sessions/ui-1/hot-prompt", "opens the second"))[^1].Event);

        var refused = await Client.PostAsJsonAsync("/api/session", new { type = "worker" });
        var refusedHot = await Client.PostAsJsonAsync("/sessions/ui-2/hot-prompt", new { prompt = "would open a third" });

        foreach (var response in new[] { refused, refusedHot })
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("too_many_sessions", await response.Content.ReadAsStringAsync());
        }
        // Open sessions still take prompts, and quick turns are not sessions that stay open.
        Assert.Equal("result", (await RunAsync("/sessions/ui-1/hot-prompt", "still served"))[^1].Event);
        Assert.Equal("result", (await RunAsync("/api/quick-turn", "a quick one"))[^1].Event);

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync($"/api/session/{first}")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Client.PostAsJsonAsync("/api/session", new { type = "worker" })).StatusCode);
    }

    private async Task<string> CreateAsync(string type)
    {
        var created = await Client.PostAsJsonAsync("/api/session", new { type });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("sessionId").GetString()!;
    }
}
