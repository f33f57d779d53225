namespace Konsole.Host;

/// <summary>The host's command line: <c>[--config FILE.hocon] [--demo]</c>, or <c>--help</c>.</summary>
public sealed record HostArguments(string? ConfigFile, bool Demo, bool Help = false)
{
    private const string UsageText = """
        usage: konsole [--config FILE.hocon] [--demo]

          --config FILE   a HOCON file merged over the defaults (hocon/konsole.hocon)
          --demo          two simulated accounts on FakeClaude: try every endpoint without a Claude login
          --help, -h      this text
        """;

    /// <summary>The arguments, or null and <paramref name="problem"/>: what in them it does not take.</summary>
    public static HostArguments? Parse(string[] args, out string problem)
    {
        problem = "";
        string? configFile = null;
        var demo = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--help" or "-h":
                    return new HostArguments(null, false, Help: true);
                case "--config" when i + 1 < args.Length:
                    configFile = args[++i];
                    break;
                case "--config":
                    problem = "--config needs a file";
                    return null;
                case "--demo":
                    demo = true;
                    break;
                default:
                    problem = $"unknown argument '{args[i]}'";
                    return null;
            }
        }
        return new HostArguments(configFile, demo);
    }

    /// <summary>Asked for (<c>--help</c>): the usage on stdout, exit code 0.</summary>
    public static int PrintHelp()
    {
        Console.Out.WriteLine(UsageText);
        return 0;
    }

    /// <summary>A command line it does not take: what in it, and the usage, on stderr; exit code 2.</summary>
    public static int Usage(string problem)
    {
        Console.Error.WriteLine($"konsole: {problem}\n{UsageText}");
        return 2;
    }
}
