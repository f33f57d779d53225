using System.Text.Json;

namespace Konsole.Actors.Accounts;

/// <summary>
/// What the supervisor reads from an account's <c>.credentials.json</c>: never the tokens themselves. <paramref name="Problem"/>:
/// why no login could be read from it (missing, unreadable, not JSON, no <c>claudeAiOauth</c>). <paramref name="RateLimitTier"/>: as an
/// account's configured <c>tier</c> says it (<c>20x</c> for the file's <c>default_claude_max_20x</c>).
/// </summary>
public sealed record AccountCredentials(DateTimeOffset? ExpiresAt, string? SubscriptionType, string? RateLimitTier, string? Problem = null)
{
    public const string FileName = ".credentials.json";

    private static readonly long MinUnixMilliseconds = DateTimeOffset.MinValue.ToUnixTimeMilliseconds();
    private static readonly long MaxUnixMilliseconds = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    /// <summary>Reads the file; what it lacks is its <see cref="Problem"/> (the CLI may find a login another way, e.g. in <c>konsole.claude.env</c>).</summary>
    public static async Task<AccountCredentials> ReadAsync(string configDir)
    {
        var path = Path.Combine(configDir, FileName);
        try
        {
            await using var stream = File.OpenRead(path);
            using var document = await JsonDocument.ParseAsync(stream).ConfigureAwait(false);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("claudeAiOauth", out var oauth) || oauth.ValueKind != JsonValueKind.Object)
                return Unread($"{path} holds no claudeAiOauth login");
            DateTimeOffset? expiresAt = oauth.TryGetProperty("expiresAt", out var e) && e.ValueKind == JsonValueKind.Number
                && e.TryGetInt64(out var ms) && ms >= MinUnixMilliseconds && ms <= MaxUnixMilliseconds
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
                : null;
            return new AccountCredentials(expiresAt, StringOf(oauth, "subscriptionType"), Tier(StringOf(oauth, "rateLimitTier")));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Unread($"{path} does not exist");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Unread($"{path} cannot be read ({e.GetType().Name})");
        }
        catch (Exception e) when (e is JsonException
            or InvalidOperationException) // a string .NET cannot decode (a lone surrogate escape)
        {
            return Unread($"{path} is not valid JSON"); // (the parser's message may quote a token)
        }
    }

    private static AccountCredentials Unread(string problem) =>
        new(null, null, null, $"no OAuth login could be read: {problem} (claude login with CLAUDE_CONFIG_DIR set to its directory)");

    /// <summary>The token's remaining life as the HTTP API shows it: "3h 45m", or "expired".</summary>
    public static string FormatExpiresIn(DateTimeOffset expiresAt, DateTimeOffset now)
    {
        var left = expiresAt - now;
        return left <= TimeSpan.Zero ? "expired" : $"{(int)left.TotalHours}h {left.Minutes}m";
    }

    private static string? Tier(string? rateLimitTier) =>
        rateLimitTier?.LastIndexOf('_') is > 0 and var at && rateLimitTier[(at + 1)..] is [>= '0' and <= '9', .., 'x'] tier ? tier : rateLimitTier;

    private static string? StringOf(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
