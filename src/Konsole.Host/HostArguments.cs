namespace Konsole.Host;

/// <summary>The host's command line: <c>[--config FILE.hocon] [--demo]</c>.</summary>
public sealed record HostArguments(string? ConfigFile, bool Demo)
{
    public static HostArguments? Parse(string[] args)
    {
        string? configFile = null;
        var demo = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--config" when i + 1 < args.Length:
                    configFile = args[++i];
                    break;
                case "--demo":
                    demo = true;
                    break;
                default:
                    return null;
            }
        }
        return new HostArguments(configFile, demo);
    }

    public static int Usage()
    {
        Console.Error.WriteLine("""
            usage: konsole [--config FILE.hocon] [--demo]

              --config FILE   a HOCON file merged over the defaults (hocon/konsole.hocon)
              --demo          two simulated accounts on FakeClaude: try every endpoint without a Claude login
            """);
        return 2;
    }
}
