using Akka.Actor;
using Konsole.Actors.Configuration;
using Konsole.Gateway;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Konsole.Testing;

/// <summary>
/// The whole product (actor system and HTTP gateway, as the host runs it) on a real Kestrel on a free loopback port,
/// with an <see cref="HttpClient"/> pointed at it. Disposing it shuts it down, CLI processes included.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GatewayHost(WebApplication app, KonsoleSettings settings, Uri baseAddress)
    {
        _app = app;
        Settings = settings;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = ClientTimeout };
    }

    /// <summary>
    /// How long <see cref="Client"/> waits for a response (all of it, unless read with
    /// <see cref="HttpCompletionOption.ResponseHeadersRead"/>): a gateway that never answers fails the test instead of hanging it.
    /// </summary>
    public static readonly TimeSpan ClientTimeout = TimeSpan.FromMinutes(5);

    public HttpClient Client { get; }

    public KonsoleSettings Settings { get; }

    public ActorSystem System => _app.Services.GetRequiredService<ActorSystem>();

    /// <summary>Starts with the configuration <paramref name="hocon"/> (its gateway urls replaced by 127.0.0.1 port 0).</summary>
    public static async Task<GatewayHost> StartAsync(string hocon, ITestOutputHelper? output = null)
    {
        var (config, settings) = KonsoleConfig.Parse(hocon, "test configuration");
        settings = settings with { Gateway = settings.Gateway with { Urls = "http://127.0.0.1:0" } };
        var app = KonsoleWebHost.Build(config, settings, builder =>
        {
            builder.Logging.ClearProviders();
            if (output is not null)
                builder.Logging.AddProvider(new TestOutputLoggerProvider(output));
        });
        await app.StartAsync();
        return new GatewayHost(app, settings, new Uri(app.Urls.First()));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Writes log lines to a test's output (and drops them once the test has ended).</summary>
public sealed class TestOutputLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) =>
            logLevel >= (category.StartsWith("Microsoft", StringComparison.Ordinal) ? LogLevel.Warning : LogLevel.Information);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
                return;
            try
            {
                output.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff} {logLevel}] {category}: {formatter(state, exception)}{(exception is null ? "" : $"\n{exception}")}");
            }
            catch (InvalidOperationException)
            {
                // the test is over
            }
        }
    }
}
