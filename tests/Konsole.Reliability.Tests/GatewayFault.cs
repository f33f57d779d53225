using System.Net;
using Konsole.Testing;
using Xunit.Abstractions;

namespace Konsole.Reliability.Tests;

/// <summary>The host (actors and gateway) on a real Kestrel on a free loopback port, over FakeClaude accounts alpha and beta.</summary>
public abstract class GatewayFault(ITestOutputHelper output, string extraHocon = "") : IAsyncLifetime
{
    protected static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    protected ITestOutputHelper Output { get; } = output;

    protected KonsoleSandbox Sandbox { get; } = KonsoleSandbox.Create(2);

    protected GatewayHost Host { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Host = await GatewayHost.StartAsync(Sandbox.Hocon(FakeClaudeCli.Path, extraHocon: extraHocon));
        var deadline = DateTime.UtcNow + Timeout;
        while ((await Host.Client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the host did not become ready");
            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        Sandbox.Dispose();
    }
}
