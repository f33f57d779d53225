using Akka.Actor;
using Akka.Hosting;
using Konsole.Actors.Configuration;
using Konsole.Actors.Hosting;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Actors.Tests.Hosting;

/// <summary>The actors hosted as a library user would: <c>WithKonsoleAccounts</c> in a generic host of their own, no gateway.</summary>
public sealed class KonsoleHostingSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task With_the_extension_alone_sessions_are_journaled_where_konsole_persistence_says_and_back_after_a_restart()
    {
        using var sandbox = KonsoleSandbox.Create(1);
        var settings = sandbox.Settings(FakeClaudeCli.Path); // journal: SQLite in the sandbox's data dir, the default
        string sessionId;
        using (var host = await StartAsync(settings))
        {
            var sessions = ActorRegistry.For(host.Services.GetRequiredService<ActorSystem>()).Get<SessionManager>();
            sessionId = (await sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Timeout)).SessionId;
            var accepted = await sessions.Ask<PromptAccepted>(new SubmitPrompt(sessionId, "remember me"), Timeout);
            await foreach (var e in accepted.Events.ReadAllAsync().WithCancellation(new CancellationTokenSource(Timeout).Token))
            {
                if (e.EndsPrompt)
                    break;
            }
            await host.StopAsync();
        }
        Assert.True(File.Exists(Path.Combine(sandbox.DataDir, "konsole.db")));

        using (var host = await StartAsync(settings))
        {
            var sessions = ActorRegistry.For(host.Services.GetRequiredService<ActorSystem>()).Get<SessionManager>();
            var back = await sessions.Ask<object>(new GetSession(sessionId), Timeout);
            // Was session_not_found: the extension left the journal to Akka's default, in memory.
            Assert.Equal(1, Assert.IsType<SessionInfo>(back).Turns);
            await host.StopAsync();
        }
    }

    private static async Task<IHost> StartAsync(KonsoleSettings settings)
    {
        var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("library-user", akka => akka.WithKonsoleAccounts(settings)))
            .Build();
        await host.StartAsync();
        return host;
    }
}
