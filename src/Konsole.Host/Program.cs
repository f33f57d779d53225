using Akka.Actor;
using Akka.Configuration;
using Konsole.Actors;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Actors.Processes;
using Konsole.Gateway;
using Konsole.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;
using Serilog.Events;

// The composition root: configuration, logging, the actor system with the accounts, the HTTP gateway.
if (HostArguments.Parse(args, out var argumentProblem) is not { } arguments)
    return HostArguments.Usage(argumentProblem);
if (arguments.Help)
    return HostArguments.PrintHelp();

Config config;
KonsoleSettings settings;
FileStream dataDirLock;
try
{
    (config, settings) = KonsoleConfig.Load(arguments.ConfigFile, arguments.Demo ? Demo.Overrides : null);
    dataDirLock = DataDirLock.Acquire(settings.DataDir);
    if (arguments.Demo)
        Demo.WriteCredentials(settings.Accounts);
}
catch (KonsoleConfigException e)
{
    return Refused(e);
}
var cliVersion = "FakeClaude";
if (!arguments.Demo)
{
    if (Executables.Locate(settings.Claude.Path) is not { } cli)
    {
        Console.Error.WriteLine(ClaudeCli.NotFoundMessage(settings.Claude.Path));
        return 3;
    }
    var secrets = SecretRedactor.SecretsInHostEnvironment(alsoSecret: settings.Accounts.Select(a => a.ApiKeyEnv).OfType<string>());
    if (ClaudeCli.CannotStart(cli, secrets, out cliVersion) is { } reason)
    {
        Console.Error.WriteLine(ClaudeCli.CannotStartMessage(settings.Claude.Path, reason));
        return 3;
    }
}

Log.Logger = new LoggerConfiguration()
    // Akka filters by akka.loglevel before its events reach this log: its DEBUG would otherwise stop here, at Serilog's default.
    .MinimumLevel.Is(string.Equals(config.GetString("akka.loglevel"), "DEBUG", StringComparison.OrdinalIgnoreCase) ? LogEventLevel.Debug : LogEventLevel.Information)
    .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
    .Filter.ByExcluding(e => e.MessageTemplate.Text == "Hosting failed to start") // said in one line below, without its stack trace
    .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}")
    .CreateLogger();
try
{
    WebApplication app;
    try
    {
        app = KonsoleWebHost.Build(config, settings, builder => builder.Services.AddSerilog());
    }
    catch (KonsoleConfigException e)
    {
        return Refused(e);
    }
    try
    {
        // Made here rather than inside the host's start, where Akka's error about the akka section would end the program with
        // a stack trace (and be raised again on the way out).
        app.Services.GetRequiredService<ActorSystem>();
    }
    catch (Exception e)
    {
        return Refused(new KonsoleConfigException($"the actor system does not start with this configuration (check its akka section): {Innermost(e).Message}"));
    }
    if (arguments.Demo)
        Log.Warning("DEMO: accounts alpha and beta are simulated by FakeClaude ({Path}); no Claude login is used and answers are echoes",
            Demo.FakeClaudePath);
    Log.Information("Konsole: {Count} account(s): {Accounts}; configured roles: dashboard {Dashboard}, quickturn {QuickTurn}; CLI {Cli} ({CliVersion})",
        settings.Accounts.Count, string.Join(", ", settings.Accounts.Select(a => a.Id)),
        settings.Roles.Dashboard, settings.Roles.QuickTurn, settings.Claude.Path, cliVersion);
    try
    {
        await app.StartAsync();
    }
    catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
    {
        // Kestrel could not bind: the port is taken (an IOException), or not this user's to take, or the address is not this
        // machine's (a SocketException); the actors had started: stop them.
        await app.StopAsync();
        return Refused(new KonsoleConfigException($"konsole.gateway.urls: cannot listen on {settings.Gateway.Urls}: {e.Message}"));
    }
    catch (OperationCanceledException) when (app.Lifetime.ApplicationStopping.IsCancellationRequested)
    {
        // A SIGTERM or Ctrl+C during the start (Kestrel's bind gives up on it): stopped as after the start, the CLIs with it.
        await app.StopAsync();
        return 0;
    }
    Log.Information("Gateway listening on {Urls}{Auth}", string.Join(", ", app.Urls),
        app.Services.GetRequiredService<GatewaySecurity>().RequiresToken ? " (bearer token required)" : "");
    await app.WaitForShutdownAsync();
    if (CoordinatedShutdown.Get(app.Services.GetRequiredService<ActorSystem>()).ShutdownReason is StateUnrecoverable failure)
    {
        Log.Fatal("Konsole stopped: {Reason}", failure);
        return failure.ExitCode;
    }
    return 0;
}
finally
{
    await Log.CloseAndFlushAsync();
    await dataDirLock.DisposeAsync();
}

static Exception Innermost(Exception e) => e is System.Reflection.TargetInvocationException or TypeInitializationException && e.InnerException is { } inner
    ? Innermost(inner)
    : e;

// What the configuration asks for cannot be done: said with the file it came from (checks after loading name the key alone).
int Refused(KonsoleConfigException e)
{
    var source = arguments.ConfigFile ?? KonsoleConfig.DefaultsName;
    Console.Error.WriteLine($"konsole: {(e.Message.StartsWith(source + ": ", StringComparison.Ordinal) ? e.Message : $"{source}: {e.Message}")}");
    return 2;
}
