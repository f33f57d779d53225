using Akka.Hosting;
using Konsole.Actors.Configuration;
using Konsole.Actors.Routing;

namespace Konsole.Actors.Hosting;

public static class KonsoleHostingExtensions
{
    /// <summary>Starts the accounts (see <see cref="KonsoleActors.StartRouter"/>) and registers the <see cref="RoleRouter"/>.</summary>
    public static AkkaConfigurationBuilder WithKonsoleAccounts(this AkkaConfigurationBuilder builder, KonsoleSettings settings) =>
        builder.WithActors((system, registry) => registry.Register<RoleRouter>(KonsoleActors.StartRouter(system, settings)));
}
