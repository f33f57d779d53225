namespace Konsole.Host;

/// <summary>The host's command line: <c>[--config FILE.hocon]</c>.</summary>
public sealed record HostArguments(string? ConfigFile)
{
    public static HostArguments? Parse(string[] args)
    {
        string? configFile = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--config" when i + 1 < args.Length:
                    configFile = args[++i];
                    break;
                default:
                    return null;
            }
        }
        return new HostArguments(configFile);
    }

    public static int Usage()
    {
        Console.Error.WriteLine("""
            usage: konsole [--config FILE.hocon]

              --config FILE   a HOCON file merged over the defaults (hocon/konsole.hocon)
            """);
        return 2;
    }
}
