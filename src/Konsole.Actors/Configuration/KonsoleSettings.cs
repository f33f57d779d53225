using System.Text;

namespace Konsole.Actors.Configuration;

/// <summary>The validated <c>konsole</c> section of the configuration.</summary>
public sealed record KonsoleSettings(
    string DataDir,
    ClaudeSettings Claude,
    IReadOnlyList<AccountSettings> Accounts,
    RoleSettings Roles,
    int QueueMaxDepth,
    OAuthSettings OAuth,
    GatewaySettings Gateway,
    SessionSettings Sessions,
    TimeSpan DrainTimeout,
    double RateLimitWarningUtilization,
    PersistenceSettings Persistence);

/// <param name="Provider">A Linq2Db provider name, e.g. <c>SQLite.MS</c>, <c>PostgreSQL.15</c>, <c>SqlServer.2022</c>.</param>
public sealed record PersistenceSettings(string Provider, string ConnectionString)
{
    public bool IsSqlite => Provider.StartsWith("SQLite", StringComparison.OrdinalIgnoreCase);

    // Settings print where they are an actor's Props argument (Akka logs those when a constructor throws): no password there.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Provider = ").Append(Provider).Append(", ConnectionString = (not shown)");
        return true;
    }
}

public sealed record ClaudeSettings(
    string Path,
    IReadOnlyList<string> ExtraArgs,
    TimeSpan TurnTimeout,
    TimeSpan InterruptTimeout,
    string WorkingDirectory,
    IReadOnlyDictionary<string, string> Environment,
    long MaxLineBytes,
    TimeSpan StartTimeout,
    TimeSpan StopGrace,
    string ChatSystemPrompt,
    BackoffSettings Restart);

/// <param name="MaxRestarts">Restarts of one process allowed within <paramref name="Window"/>; beyond them the account fails.</param>
public sealed record BackoffSettings(TimeSpan MinBackoff, TimeSpan MaxBackoff, double RandomFactor, int MaxRestarts, TimeSpan Window)
{
    /// <summary>The delay before restart number <paramref name="attempt"/> (1-based), jittered by <paramref name="random"/> in [0, 1).</summary>
    public TimeSpan Delay(int attempt, double random)
    {
        var exponential = MinBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        var capped = Math.Min(exponential, MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (1 + RandomFactor * (2 * random - 1)));
    }
}

/// <summary>
/// One Claude account. <see cref="ConfigDir"/> is where its credentials and transcripts live (the CLI's
/// <c>CLAUDE_CONFIG_DIR</c>); an API-key account names the environment variable holding its key.
/// </summary>
/// <param name="Simulated">It runs on FakeClaude (the host's --demo), not on a real Claude login.</param>
/// <param name="CliDefaultLogin">The account of a configuration without accounts: the user's own login, where the CLI looks without
/// <c>CLAUDE_CONFIG_DIR</c> (its processes get none; with one the CLI reads other files, e.g. <c>.claude.json</c> in that dir).</param>
public sealed record AccountSettings(string Id, string Label, string ConfigDir, string? ApiKeyEnv, string? Tier, bool Simulated = false,
    bool CliDefaultLogin = false)
{
    public bool UsesApiKey => ApiKeyEnv is not null;
}

public sealed record RoleSettings(string Dashboard, string QuickTurn);

/// <param name="MaxWorkers">Worker processes per account at once; more worker sessions wait for a place.</param>
/// <param name="ReplayBuffer">Events each session keeps for replay, at most.</param>
/// <param name="ReplayBufferBytes">Bytes of events' data each session keeps for replay, at most (its latest event whatever its size).</param>
/// <param name="MaxOpen">Sessions open at once (quick turns' not counted); another is refused until one closes.</param>
/// <param name="ReplayTotalBytes">Bytes all sessions' replay buffers keep together, at most, as each last said at a prompt's end.</param>
public sealed record SessionSettings(int MaxWorkers, int ReplayBuffer, long ReplayBufferBytes, int MaxOpen, long ReplayTotalBytes);

public sealed record OAuthSettings(TimeSpan RefreshThreshold, string TokenEndpoint, TimeSpan RetryMinBackoff, TimeSpan RetryMaxBackoff)
{
    /// <summary>The delay before retry <paramref name="attempt"/> (1-based) of a failed refresh, jittered by <paramref name="random"/>.</summary>
    public TimeSpan RetryDelay(int attempt, double random) => new BackoffSettings(RetryMinBackoff, RetryMaxBackoff, 0.2, 1, TimeSpan.Zero).Delay(attempt, random);
}

public sealed record GatewaySettings(
    string Urls,
    string AuthToken,
    string AuthTokenFile,
    long MaxPromptBytes,
    IReadOnlyList<string> AllowedHosts,
    IReadOnlyList<string> CorsOrigins,
    int MaxStreams,
    TimeSpan KeepAlive)
{
    // As PersistenceSettings': the token never prints.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Urls = ").Append(Urls).Append(", AuthToken = ").Append(AuthToken.Length == 0 ? "(none)" : "(not shown)")
            .Append(", AuthTokenFile = ").Append(AuthTokenFile).Append(", MaxPromptBytes = ").Append(MaxPromptBytes)
            .Append(", AllowedHosts = [").AppendJoin(", ", AllowedHosts).Append("], CorsOrigins = [").AppendJoin(", ", CorsOrigins)
            .Append("], MaxStreams = ").Append(MaxStreams).Append(", KeepAlive = ").Append(KeepAlive);
        return true;
    }
}
