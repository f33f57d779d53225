using System.Text.Json;

namespace Konsole.Actors.Accounts;

/// <summary>
/// What the supervisor reads from an account's <c>.credentials.json</c>: never the tokens themselves.
/// </summary>
public sealed record AccountCredentials(DateTimeOffset? ExpiresAt, string? SubscriptionType, string? RateLimitTier)
{
    public const string FileName = ".credentials.json";

    private static readonly long MinUnixMilliseconds = DateTimeOffset.MinValue.ToUnixTimeMilliseconds();
    private static readonly long MaxUnixMilliseconds = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    /// <summary>Reads the file; null when it is missing or unreadable (the account may use an API key).</summary>
    public static async Task<AccountCredentials?> ReadAsync(string configDir)
    {
        try
        {
            await using var stream = File.OpenRead(Path.Combine(configDir, FileName));
            using var document = await JsonDocument.ParseAsync(stream).ConfigureAwait(false);
            if (!document.RootElement.TryGetProperty("claudeAiOauth", out var oauth) || oauth.ValueKind != JsonValueKind.Object)
                return null;
            DateTimeOffset? expiresAt = oauth.TryGetProperty("expiresAt", out var e) && e.ValueKind == JsonValueKind.Number
                && e.TryGetInt64(out var ms) && ms >= MinUnixMilliseconds && ms <= MaxUnixMilliseconds
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
                : null;
            return new AccountCredentials(expiresAt, StringOf(oauth, "subscriptionType"), StringOf(oauth, "rateLimitTier"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException
            or InvalidOperationException) // a string .NET cannot decode (a lone surrogate escape)
        {
            return null;
        }
    }

    /// <summary>The token's remaining life as the HTTP API shows it: "3h 45m", or "expired".</summary>
    public static string FormatExpiresIn(DateTimeOffset expiresAt, DateTimeOffset now)
    {
        var left = expiresAt - now;
        return left <= TimeSpan.Zero ? "expired" : $"{(int)left.TotalHours}h {left.Minutes}m";
    }

    private static string? StringOf(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
