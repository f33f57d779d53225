using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Actors.Hosting;
using Konsole.Actors.Routing;
using Konsole.Actors.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Konsole.Gateway;

/// <summary>The whole product in one web application: the actor system with the accounts and sessions, and the HTTP gateway.</summary>
public static class KonsoleWebHost
{
    /// <summary>
    /// Builds the application listening on <c>konsole.gateway.urls</c>. Throws <see cref="KonsoleConfigException"/> for a
    /// gateway setting it cannot honour (a public bind without a token, an unreadable token file).
    /// </summary>
    /// <param name="configure">Last changes to the builder (the host adds its logging here).</param>
    public static WebApplication Build(Config config, KonsoleSettings settings, Action<WebApplicationBuilder>? configure = null)
    {
        var security = GatewaySecurity.From(settings.Gateway);
        PersistenceSetup.Prepare(settings.Persistence);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls([.. security.Urls]);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Endpoints come from konsole.gateway.urls alone: Kestrel's own settings (Kestrel__Endpoints__... in the environment,
            // an appsettings.json) would replace them unchecked, e.g. a public bind without the token it needs.
            kestrel.Configure(new ConfigurationBuilder().Build());
            kestrel.AddServerHeader = false;
            // Odd ids (10 KB long) reach the endpoints and get a problem+json, instead of Kestrel's bare 414.
            kestrel.Limits.MaxRequestLineSize = 64 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 96 * 1024;
        });
        // On SIGTERM running turns drain (konsole.shutdown.drain-timeout), are interrupted, and every CLI stops gracefully:
        // first while the HTTP server waits for open streams, then in the actor system's shutdown for turns without one.
        // (the actor system's phases: KonsoleActors.ShutdownPhases)
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout =
            2 * KonsoleActors.DrainPhase(settings) + 2 * KonsoleActors.StopPhase(settings) + TimeSpan.FromSeconds(15));
        builder.Services.AddProblemDetails();
        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.AddConcurrencyLimiter(GatewayEndpoints.StreamsPolicy, o =>
            {
                o.PermitLimit = settings.Gateway.MaxStreams;
                o.QueueLimit = 0;
            });
            limiter.OnRejected = (rejected, _) => new ValueTask(Problems.Problem(rejected.HttpContext, StatusCodes.Status429TooManyRequests,
                "too_many_streams", $"{settings.Gateway.MaxStreams} streams are open (konsole.gateway.max-streams)").ExecuteAsync(rejected.HttpContext));
        });
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(security);
        if (settings.Gateway.CorsOrigins.Count > 0)
            builder.Services.AddCors(cors => cors.AddDefaultPolicy(policy => policy
                .WithOrigins([.. settings.Gateway.CorsOrigins])
                .AllowAnyHeader()
                .WithMethods("GET", "POST", "DELETE")
                .WithExposedHeaders("Konsole-First-Event-Id", "Retry-After")));
        builder.Services.AddAkka("konsole", akka =>
        {
            akka
            .AddHocon(config, HoconAddMode.Prepend)
            .ConfigureLoggers(loggers =>
            {
                loggers.ClearLoggers();
                loggers.AddLoggerFactory();
            })
            .WithKonsoleAccounts(settings)
            .WithActors((system, registry) =>
            {
                registry.Register<GatewayActor>(system.ActorOf(GatewayActor.Props(registry.Get<RoleRouter>(), registry.Get<SessionManager>()), "gateway"));
            });
        });
        configure?.Invoke(builder);

        var app = builder.Build();
        // Stopping: refuse new prompts, let running turns drain; their streams end with them, so the server can stop.
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            if (app.Services.GetRequiredService<ActorRegistry>().TryGet<RoleRouter>(out var router))
                router.Tell(new RoleRouterProtocol.DrainAccounts(settings.DrainTimeout));
        });
        // Errors outside the endpoints (no such path, wrong method, a bug) as problem+json too, whatever the client's Accept says
        // (the built-in writers fall back to an empty or text/plain body for an EventSource's text/event-stream).
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = context => Problems.Problem(context, StatusCodes.Status500InternalServerError, "internal_error",
                "the gateway failed to answer this request; the host's log says why").ExecuteAsync(context),
        });
        app.UseStatusCodePages(pages => Problems.ForStatus(pages.HttpContext).ExecuteAsync(pages.HttpContext));
        if (settings.Gateway.CorsOrigins.Count > 0)
            app.UseCors();
        app.Use((context, next) => security.InvokeAsync(context, next));
        app.UseRateLimiter();
        app.MapKonsoleGateway();
        return app;
    }
}
