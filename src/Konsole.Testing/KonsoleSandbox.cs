using System.Text;
using System.Text.Json;
using Konsole.Actors.Configuration;

namespace Konsole.Testing;

/// <summary>One account of a sandbox, with its own OAuth login (tokens made up for the test).</summary>
public sealed record SandboxAccount(string Id, string Label, string ConfigDir, string AccessToken, string RefreshToken);

/// <summary>
/// A throw-away directory with accounts (alpha, beta, gamma, ...), each a config dir holding a
/// <c>.credentials.json</c> that expires in 24 hours, a working directory and a data directory, and the
/// configuration that ties them together. Deleted on dispose.
/// </summary>
public sealed class KonsoleSandbox : IDisposable
{
    private static readonly string[] Names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];

    private KonsoleSandbox(string root, IReadOnlyList<SandboxAccount> accounts)
    {
        Root = root;
        Accounts = accounts;
    }

    public string Root { get; }

    public IReadOnlyList<SandboxAccount> Accounts { get; }

    public string WorkingDirectory => Path.Combine(Root, "work");

    public string DataDir => Path.Combine(Root, "data");

    public static KonsoleSandbox Create(int accounts)
    {
        // A directory of its own, this user's only: a shared parent made by one user (root) was out of another's reach.
        var root = Directory.CreateTempSubdirectory("konsole-tests-").FullName;
        var list = new List<SandboxAccount>();
        for (var i = 0; i < accounts; i++)
        {
            var id = i < Names.Length ? Names[i] : $"account{i + 1}";
            var account = new SandboxAccount(id, $"{id}.test", Path.Combine(root, "accounts", id),
                $"sk-ant-oat01-{id}-{Guid.NewGuid():N}", $"sk-ant-ort01-{id}-{Guid.NewGuid():N}");
            WriteCredentials(account, DateTimeOffset.UtcNow.AddHours(24));
            list.Add(account);
        }
        Directory.CreateDirectory(Path.Combine(root, "work"));
        return new KonsoleSandbox(root, list);
    }

    /// <summary>Writes the account's <c>.credentials.json</c> as a Claude login does.</summary>
    public static void WriteCredentials(SandboxAccount account, DateTimeOffset expiresAt)
    {
        Directory.CreateDirectory(account.ConfigDir);
        var credentials = new
        {
            claudeAiOauth = new
            {
                accessToken = account.AccessToken,
                refreshToken = account.RefreshToken,
                expiresAt = expiresAt.ToUnixTimeMilliseconds(),
                scopes = new[] { "user:inference", "user:profile" },
                subscriptionType = "max",
                rateLimitTier = "default_claude_max_20x",
            },
        };
        File.WriteAllText(Path.Combine(account.ConfigDir, ".credentials.json"), JsonSerializer.Serialize(credentials));
    }

    /// <summary>
    /// The HOCON configuration of this sandbox: its accounts (tier 20x), <paramref name="cliPath"/> as the CLI,
    /// <paramref name="environment"/> for every CLI process, quick restarts; then <paramref name="extraHocon"/>.
    /// </summary>
    public string Hocon(string cliPath, IReadOnlyDictionary<string, string>? environment = null, string extraHocon = "")
    {
        var text = new StringBuilder();
        text.AppendLine("konsole {");
        text.AppendLine($"  data-dir = {Quote(DataDir)}");
        text.AppendLine("  claude {");
        text.AppendLine($"    path = {Quote(cliPath)}");
        text.AppendLine($"    working-directory = {Quote(WorkingDirectory)}");
        text.AppendLine("    stop-grace = 2s");
        text.AppendLine("    restart { min-backoff = 100ms, max-backoff = 2s, random-factor = 0.2 }");
        text.AppendLine("    environment {");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            text.AppendLine($"      {Quote(name)} = {Quote(value)}");
        text.AppendLine("    }");
        text.AppendLine("  }");
        text.AppendLine("  accounts = [");
        foreach (var account in Accounts)
            text.AppendLine($"    {{ id = {Quote(account.Id)}, label = {Quote(account.Label)}, config-dir = {Quote(account.ConfigDir)}, tier = \"20x\" }}");
        text.AppendLine("  ]");
        text.AppendLine("}");
        text.AppendLine(extraHocon);
        return text.ToString();
    }

    /// <summary>The validated settings of <see cref="Hocon"/>.</summary>
    public KonsoleSettings Settings(string cliPath, IReadOnlyDictionary<string, string>? environment = null, string extraHocon = "") =>
        KonsoleConfig.Parse(Hocon(cliPath, environment, extraHocon), "sandbox configuration").Settings;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a process still writing a transcript; the temp dir is cleaned up by the OS eventually
        }
    }

    private static string Quote(string value) => JsonSerializer.Serialize(value);
}
