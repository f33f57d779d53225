using System.Net;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>A web page at an origin <c>konsole.gateway.cors-origins</c> lists calls the API from the browser; others are refused.</summary>
public sealed class CorsSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    private const string Ui = "http://ui.example:3000";

    protected override string ExtraHocon => $"konsole.gateway.cors-origins = [\"{Ui}/\"]";

    [Fact]
    public async Task A_listed_origin_gets_its_preflight_and_cors_headers_and_another_is_refused()
    {
        var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/accounts/switch");
        preflight.Headers.Add("Origin", Ui);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization, content-type");
        var read = new HttpRequestMessage(HttpMethod.Get, "/api/accounts");
        read.Headers.Add("Origin", Ui);
        var foreign = new HttpRequestMessage(HttpMethod.Get, "/api/accounts");
        foreign.Headers.Add("Origin", "http://ui.example:3001");

        using var allowed = await Client.SendAsync(preflight);
        using var answered = await Client.SendAsync(read);
        using var refused = await Client.SendAsync(foreign);

        Assert.Equal(HttpStatusCode.NoContent, allowed.StatusCode);
        Assert.Equal(Ui, Assert.Single(allowed.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Contains("POST", string.Join(",", allowed.Headers.GetValues("Access-Control-Allow-Methods")));
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Equal(Ui, Assert.Single(answered.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Contains("Konsole-First-Event-Id", string.Join(",", answered.Headers.GetValues("Access-Control-Expose-Headers")));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.False(refused.Headers.Contains("Access-Control-Allow-Origin"));
    }
}
