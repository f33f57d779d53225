using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Konsole.Actors.Configuration;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>A gateway with a bearer token (konsole.gateway.auth-token).</summary>
public sealed class AuthSpecs(ITestOutputHelper output) : GatewaySpec(output)
{
    private const string Token = "test-token-7f3a9c";

    protected override string ExtraHocon => $"konsole.gateway.auth-token = \"{Token}\"";

    [Theory]
    [InlineData("GET", "/api/accounts")]
    [InlineData("GET", "/hot/status")]
    [InlineData("POST", "/sessions/ui-1/hot-prompt")]
    [InlineData("POST", "/api/quick-turn")]
    [InlineData("GET", "/api/events")]
    [InlineData("GET", "/api/session/anything")]
    public async Task Every_api_path_answers_401_problem_without_the_token(string method, string path)
    {
        foreach (var authorization in new[] { null, "Bearer wrong-token", $"Basic {Token}", "Bearer" })
        {
            var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = JsonContent.Create(new { prompt = "hi" }) };
            if (authorization is not null)
                request.Headers.TryAddWithoutValidation("Authorization", authorization);

            var response = await Client.SendAsync(request);

            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
            var problem = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain(Token, problem);
            Assert.DoesNotContain("wrong-token", problem);
        }
    }

    [Fact]
    public async Task With_the_token_the_api_answers_and_health_needs_none()
    {
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/readyz")).StatusCode);

        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/api/accounts")).StatusCode);
        Assert.Equal("echo: hi", ResultText(await RunAsync("/api/quick-turn", "hi")));
    }

    [Fact]
    public void A_public_bind_without_a_token_is_refused_and_with_one_it_is_taken()
    {
        var settings = KonsoleConfig.Parse("").Settings.Gateway;

        var refused = Assert.Throws<KonsoleConfigException>(() => GatewaySecurity.From(settings with { Urls = "http://0.0.0.0:5080" }));

        Assert.Contains("reachable from other machines", refused.Message);
        Assert.Contains("konsole.gateway.auth-token", refused.Message);
        Assert.Throws<KonsoleConfigException>(() => GatewaySecurity.From(settings with { Urls = "http://127.0.0.1:5080;http://192.168.1.5:5080" }));
        Assert.Throws<KonsoleConfigException>(() => GatewaySecurity.From(settings with { Urls = "http://x@127.0.0.1:5080" })); // Kestrel binds that to all
        Assert.True(GatewaySecurity.From(settings with { Urls = "http://0.0.0.0:5080", AuthToken = Token }).RequiresToken);
        Assert.False(GatewaySecurity.From(settings with { Urls = "http://localhost:5080;http://[::1]:5081" }).RequiresToken);
        Assert.Throws<KonsoleConfigException>(() => GatewaySecurity.From(settings with { AuthToken = Token, AuthTokenFile = "/x" }));
        Assert.Contains("blank", Assert.Throws<KonsoleConfigException>(() => GatewaySecurity.From(settings with { Urls = "http://0.0.0.0:5080", AuthToken = "  " })).Message);
        Assert.Contains("cannot read", Assert.Throws<KonsoleConfigException>(() => GatewaySecurity.From(settings with { AuthTokenFile = "/nonexistent/token" })).Message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5080/", true)]
    [InlineData("http://localhost:5080; http://[::1]:5081", true)]
    [InlineData("http://*:5080", true)]
    [InlineData("http://+:5080", true)]
    [InlineData("http://[::]:5080", true)]
    [InlineData("http://unix:/tmp/konsole.sock", true)] // Kestrel's Unix socket
    [InlineData("http://127.0.0.1:5080/konsole", false)] // Kestrel's path base: was an exit with a stack trace
    [InlineData("http://127.0.0.1:5080/%2e", false)]
    [InlineData("http://127.0.0.1:5080?x=1", false)]
    [InlineData("https://127.0.0.1:5080", false)] // no certificate: was an exit with a stack trace
    [InlineData(";", false)] // was Kestrel's default, http://localhost:5000
    [InlineData("http://127.0.0.1", false)] // was port 80
    [InlineData("http://[::1]/", false)]
    public void Gateway_urls_are_http_hosts_and_ports(string urls, bool taken)
    {
        var settings = KonsoleConfig.Parse("").Settings.Gateway with { Urls = urls, AuthToken = Token };

        var refused = Record.Exception(() => GatewaySecurity.From(settings));

        Assert.Equal(taken, refused is null);
        Assert.True(refused is null or KonsoleConfigException, refused?.ToString());
    }

    [Fact]
    public async Task The_token_can_come_from_a_file_and_never_reaches_the_log()
    {
        var file = Path.Combine(Sandbox.Root, "token");
        await File.WriteAllTextAsync(file, "file-token-91b2\n");
        var log = new StringWriterOutput();
        using var own = KonsoleSandbox.Create(1); // a data dir of its own: a host starting on another's would reap its CLIs
        await using var host = await GatewayHost.StartAsync(own.Hocon(FakeClaudeCli.Path, extraHocon: $"konsole.gateway.auth-token-file = \"{file}\""), log);
        host.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "file-token-91b2");

        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/api/accounts")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Client.GetAsync("/api/accounts")).StatusCode);
        Assert.DoesNotContain("file-token-91b2", log.Text);
        Assert.DoesNotContain(Token, log.Text);
    }
}
