using System.Text.Json;
using Konsole.Actors.Configuration;

namespace Konsole.Host;

/// <summary>
/// <c>--demo</c>: two simulated accounts, alpha (dashboard) and beta (quickturn), on the FakeClaude program shipped
/// next to the host. They answer <c>echo: &lt;prompt&gt;</c> and use no Claude login; their made-up credentials live
/// under the data directory.
/// </summary>
public static class Demo
{
    public static string FakeClaudePath => Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "FakeClaude.exe" : "FakeClaude");

    /// <summary>
    /// The HOCON that puts the demo accounts in place of the configured ones, and the demo's state (its journal, its CLIs'
    /// records) in a data dir of its own: the real host run later on the same data dir must not find the demo's sessions.
    /// </summary>
    public static string Overrides(string dataDir)
    {
        string Account(string id) =>
            $"{{ id = \"{id}\", label = \"{id} (simulated)\", config-dir = {JsonSerializer.Serialize(ConfigDir(dataDir, id))}, tier = \"demo\", simulated = true }}";
        return $$"""
            konsole {
              data-dir = {{JsonSerializer.Serialize(Path.Combine(dataDir, "demo"))}}
              persistence { provider = "SQLite.MS", connection-string = "" }
              claude.path = {{JsonSerializer.Serialize(FakeClaudePath)}}
              accounts = [ {{Account("alpha")}}, {{Account("beta")}} ]
              roles { dashboard = "alpha", quickturn = "beta" }
            }
            """;
    }

    /// <summary>Gives each demo account a login of its own (fake tokens, valid for 24 hours) in its config dir.</summary>
    public static void WriteCredentials(IEnumerable<AccountSettings> accounts)
    {
        foreach (var (id, dir) in accounts.Select(a => (a.Id, a.ConfigDir)))
        {
            Directory.CreateDirectory(dir);
            var credentials = new
            {
                claudeAiOauth = new
                {
                    accessToken = $"sk-ant-oat01-demo-{id}",
                    refreshToken = $"sk-ant-ort01-demo-{id}",
                    expiresAt = DateTimeOffset.UtcNow.AddHours(24).ToUnixTimeMilliseconds(),
                    scopes = new[] { "user:inference", "user:profile" },
                    subscriptionType = "demo",
                    rateLimitTier = "demo",
                },
            };
            File.WriteAllText(Path.Combine(dir, ".credentials.json"), JsonSerializer.Serialize(credentials));
        }
    }

    private static string ConfigDir(string dataDir, string id) => Path.Combine(dataDir, "demo", id);
}
