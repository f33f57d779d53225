using Akka.Hosting;
using Konsole.Actors.Configuration;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;

namespace Konsole.Actors.Hosting;

public static class KonsoleHostingExtensions
{
    /// <summary>
    /// Starts the accounts and the sessions (see <see cref="KonsoleActors.StartRouter"/> and
    /// <see cref="KonsoleActors.StartSessions"/>) and registers the <see cref="RoleRouter"/> and the <see cref="SessionManager"/>.
    /// </summary>
    public static AkkaConfigurationBuilder WithKonsoleAccounts(this AkkaConfigurationBuilder builder, KonsoleSettings settings) =>
        builder.WithActors((system, registry) =>
        {
            var router = KonsoleActors.StartRouter(system, settings);
            registry.Register<RoleRouter>(router);
            registry.Register<SessionManager>(KonsoleActors.StartSessions(system, router, settings));
        });
}
