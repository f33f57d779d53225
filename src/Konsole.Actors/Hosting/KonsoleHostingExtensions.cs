using Akka.Hosting;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;

namespace Konsole.Actors.Hosting;

public static class KonsoleHostingExtensions
{
    /// <summary>
    /// Starts the accounts and the sessions (see <see cref="KonsoleActors.StartRouter"/> and
    /// <see cref="KonsoleActors.StartSessions"/>), registers the <see cref="RoleRouter"/> and the <see cref="SessionManager"/>, and
    /// adds what they need of the actor system: their journal (<c>konsole.persistence</c>, its database made ready first), the
    /// serializer of its events and the rest of konsole's <c>akka</c> defaults (under the system's own configuration), and a
    /// shutdown that drains running turns and stops every CLI (<see cref="KonsoleActors.DrainOnShutdown"/>, with phases long
    /// enough for it). Throws <see cref="KonsoleConfigException"/> when the database cannot be made ready.
    /// </summary>
    public static AkkaConfigurationBuilder WithKonsoleAccounts(this AkkaConfigurationBuilder builder, KonsoleSettings settings)
    {
        PersistenceSetup.Prepare(settings.Persistence);
        return builder
            .AddSetup(PersistenceSetup.Connections(settings.Persistence))
            .AddHocon(KonsoleActors.ShutdownPhases(settings), HoconAddMode.Prepend)
            .AddHocon(PersistenceSetup.Hocon(settings.Persistence), HoconAddMode.Append)
            .AddHocon(KonsoleConfig.Defaults, HoconAddMode.Append)
            .WithActors((system, registry) =>
            {
                var router = KonsoleActors.StartRouter(system, settings);
                registry.Register<RoleRouter>(router);
                registry.Register<SessionManager>(KonsoleActors.StartSessions(system, router, settings));
                KonsoleActors.DrainOnShutdown(system, router, settings);
            });
    }
}
