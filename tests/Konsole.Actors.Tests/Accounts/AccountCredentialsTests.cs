using Konsole.Actors.Accounts;

namespace Konsole.Actors.Tests.Accounts;

public sealed class AccountCredentialsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("konsole-credentials-").FullName;

    [Theory]
    [InlineData("\"1795982153000\"")]
    [InlineData("null")]
    [InlineData("1e30")]
    [InlineData("9223372036854775807")]
    [InlineData("-9223372036854775808")]
    [InlineData("17959821530.5")]
    public async Task An_expiry_that_is_not_a_time_reads_as_unknown_and_the_rest_still_reads(string expiresAt)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, AccountCredentials.FileName),
            $$$"""{"claudeAiOauth":{"accessToken":"a","expiresAt":{{{expiresAt}}},"subscriptionType":"max","rateLimitTier":"20x"}}""");

        var credentials = await AccountCredentials.ReadAsync(_dir);

        Assert.Equal(new AccountCredentials(null, "max", "20x"), credentials);
    }

    [Theory]
    [InlineData("default_claude_max_20x", "20x")] // as a configured tier says it (the HTTP API's rateLimitTier)
    [InlineData("default_claude_max_5x", "5x")]
    [InlineData("default_claude_ai", "default_claude_ai")]
    [InlineData("20x", "20x")]
    [InlineData("max_x", "max_x")]
    public async Task The_rate_limit_tier_reads_as_a_configured_tier_says_it(string inFile, string read)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, AccountCredentials.FileName),
            $$$"""{"claudeAiOauth":{"accessToken":"a","rateLimitTier":"{{{inFile}}}"}}""");

        Assert.Equal(read, (await AccountCredentials.ReadAsync(_dir)).RateLimitTier);
    }

    [Fact]
    public async Task A_string_dotnet_cannot_decode_makes_the_file_unreadable_instead_of_throwing()
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, AccountCredentials.FileName),
            """{"claudeAiOauth":{"expiresAt":1795982153000,"subscriptionType":"max\ud800"}}""");

        Assert.EndsWith(".credentials.json is not valid JSON (claude login with CLAUDE_CONFIG_DIR set to its directory)", (await AccountCredentials.ReadAsync(_dir)).Problem);
    }

    [Theory]
    [InlineData(null, "does not exist")]
    [InlineData("{\"claudeAiOauth\":", "is not valid JSON")]
    [InlineData("[1]", "holds no claudeAiOauth login")]
    [InlineData("{\"mcpOAuth\":{}}", "holds no claudeAiOauth login")]
    public async Task A_file_without_a_readable_login_says_why(string? content, string problem)
    {
        if (content is not null)
            await File.WriteAllTextAsync(Path.Combine(_dir, AccountCredentials.FileName), content);

        var credentials = await AccountCredentials.ReadAsync(_dir);

        Assert.Equal((null, null), (credentials.ExpiresAt, credentials.RateLimitTier));
        Assert.Equal($"no OAuth login could be read: {Path.Combine(_dir, AccountCredentials.FileName)} {problem} (claude login with CLAUDE_CONFIG_DIR set to its directory)",
            credentials.Problem);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
