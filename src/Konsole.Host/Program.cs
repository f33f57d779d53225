using Akka.Hosting;
using Konsole.Actors.Configuration;
using Konsole.Actors.Hosting;
using Konsole.Host;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;

// The composition root: configuration, logging, the actor system with the configured accounts.
if (HostArguments.Parse(args) is not { } arguments)
    return HostArguments.Usage();

Akka.Configuration.Config config;
KonsoleSettings settings;
try
{
    (config, settings) = KonsoleConfig.Load(arguments.ConfigFile);
}
catch (KonsoleConfigException e)
{
    Console.Error.WriteLine($"konsole: {e.Message}");
    return 2;
}
if (ClaudeCli.Locate(settings.Claude.Path) is null)
{
    Console.Error.WriteLine(ClaudeCli.NotFoundMessage(settings.Claude.Path));
    return 3;
}

Log.Logger = new LoggerConfiguration()
    .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}")
    .CreateLogger();

var builder = Host.CreateApplicationBuilder();
builder.Services.AddSerilog();
// Coordinated shutdown stops every CLI gracefully (see konsole.claude.stop-grace); give it the time.
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(45));
builder.Services.AddAkka("konsole", akka => akka
    .AddHocon(config, HoconAddMode.Prepend)
    .ConfigureLoggers(loggers =>
    {
        loggers.ClearLoggers();
        loggers.AddLoggerFactory();
    })
    .WithKonsoleAccounts(settings));

Log.Information("Konsole: {Count} account(s): {Accounts}; dashboard {Dashboard}, quickturn {QuickTurn}; CLI {Cli}",
    settings.Accounts.Count, string.Join(", ", settings.Accounts.Select(a => a.Id)),
    settings.Roles.Dashboard, settings.Roles.QuickTurn, settings.Claude.Path);
try
{
    await builder.Build().RunAsync();
    return 0;
}
finally
{
    await Log.CloseAndFlushAsync();
}
