using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Gateway.Tests;

/// <summary>The host (actors and gateway) on a real Kestrel on a free loopback port, over FakeClaude accounts alpha and beta.</summary>
public abstract class GatewaySpec(ITestOutputHelper output, int accounts = 2) : IAsyncLifetime
{
    protected static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    protected const string Long = "[[chunks:1000:50]]";

    protected ITestOutputHelper Output { get; } = output;

    protected KonsoleSandbox Sandbox { get; } = KonsoleSandbox.Create(accounts);

    protected GatewayHost Host { get; private set; } = null!;

    protected HttpClient Client => Host.Client;

    /// <summary>Added to the sandbox's configuration.</summary>
    protected virtual string ExtraHocon => "";

    public virtual async Task InitializeAsync()
    {
        Host = await StartHostAsync(Sandbox.Hocon(FakeClaudeCli.Path, extraHocon: ExtraHocon));
    }

    public virtual async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        Sandbox.Dispose();
    }

    /// <summary>Starts a host and waits until /readyz says every account is warm.</summary>
    protected async Task<GatewayHost> StartHostAsync(string hocon)
    {
        var host = await GatewayHost.StartAsync(hocon, Output);
        var deadline = DateTime.UtcNow + Timeout;
        while ((await host.Client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("the host did not become ready");
            await Task.Delay(50);
        }
        return host;
    }

    /// <summary>Stops the host and starts another on the same configuration and data: a restart.</summary>
    protected async Task RestartHostAsync()
    {
        await Host.DisposeAsync();
        Host = await StartHostAsync(Sandbox.Hocon(FakeClaudeCli.Path, extraHocon: ExtraHocon));
    }

    protected Task<SseStream> PostPromptAsync(string path, string prompt, HttpClient? client = null) =>
        SseStream.OpenAsync(client ?? Client, new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(new { prompt }) }, Timeout);

    protected Task<SseStream> GetEventsAsync(string path, string? lastEventId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
            request.Headers.Add("Last-Event-ID", lastEventId);
        return SseStream.OpenAsync(Client, request, Timeout);
    }

    /// <summary>Runs a prompt to its end and returns its events.</summary>
    protected async Task<IReadOnlyList<SseEvent>> RunAsync(string path, string prompt)
    {
        await using var stream = await PostPromptAsync(path, prompt);
        Assert.Equal(HttpStatusCode.OK, stream.Response.StatusCode);
        return await stream.ReadToEndAsync(Timeout);
    }

    protected async Task<JsonElement> GetJsonAsync(string path)
    {
        var response = await Client.GetAsync(path);
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    protected static string? ResultText(IReadOnlyList<SseEvent> events) =>
        JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("result").GetString();

    protected static string Field(SseEvent e, string name) => JsonDocument.Parse(e.Data).RootElement.GetProperty(name).ToString();
}
