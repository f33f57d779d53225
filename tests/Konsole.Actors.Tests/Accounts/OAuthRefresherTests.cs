using System.Text;
using System.Text.Json.Nodes;
using Konsole.Actors.Accounts;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace Konsole.Actors.Tests.Accounts;

/// <summary>OAuthRefresher against the fake token endpoint, on a sandbox account's real config dir.</summary>
public sealed class OAuthRefresherTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly DateTimeOffset Now = new(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private readonly KonsoleSandbox _sandbox = KonsoleSandbox.Create(1);
    private readonly HttpClient _http = new() { Timeout = Timeout };
    private readonly FixedTime _time = new(Now);
    private FakeTokenEndpoint _endpoint = null!;

    private SandboxAccount Account => _sandbox.Accounts[0];

    private string CredentialsPath => Path.Combine(Account.ConfigDir, AccountCredentials.FileName);

    public async Task InitializeAsync()
    {
        _endpoint = await FakeTokenEndpoint.StartAsync();
        _endpoint.Accept(Account.RefreshToken);
    }

    public async Task DisposeAsync()
    {
        await _endpoint.DisposeAsync();
        _http.Dispose();
        _sandbox.Dispose();
    }

    [Fact]
    public async Task A_refresh_rotates_both_tokens_moves_expiry_and_keeps_every_other_field()
    {
        var before = ReadCredentials();
        before["claudeAiOauth"]!["someFutureField"] = new JsonObject { ["nested"] = 42 };
        before["mcpOAuth"] = new JsonObject { ["server"] = "kept" };
        File.WriteAllText(CredentialsPath, before.ToJsonString());
        _endpoint.ExpiresIn = TimeSpan.FromHours(8);

        var refreshed = await RefreshAsync();

        Assert.Equal(Now.AddHours(8), refreshed.ExpiresAt);
        var after = ReadCredentials();
        var oauth = after["claudeAiOauth"]!;
        var issued = Assert.Single(_endpoint.Issued);
        Assert.Equal(issued.AccessToken, (string?)oauth["accessToken"]);
        Assert.Equal(issued.RefreshToken, (string?)oauth["refreshToken"]);
        Assert.StartsWith("sk-ant-oat01-fake-", issued.AccessToken);
        Assert.StartsWith("sk-ant-ort01-fake-", issued.RefreshToken);
        Assert.NotEqual(Account.AccessToken, issued.AccessToken);
        Assert.Equal(Now.AddHours(8).ToUnixTimeMilliseconds(), (long)oauth["expiresAt"]!);
        Assert.Equal("max", (string?)oauth["subscriptionType"]);
        Assert.Equal("default_claude_max_20x", (string?)oauth["rateLimitTier"]);
        Assert.Equal(["user:inference", "user:profile"], oauth["scopes"]!.AsArray().Select(s => (string?)s));
        Assert.Equal(42, (int)oauth["someFutureField"]!["nested"]!);
        Assert.Equal("kept", (string?)after["mcpOAuth"]!["server"]);
        // What the supervisor reads back agrees.
        Assert.Equal(Now.AddHours(8), (await AccountCredentials.ReadAsync(Account.ConfigDir))!.ExpiresAt);
    }

    [Fact]
    public async Task The_request_is_a_refresh_token_grant_with_the_cli_client_id_and_the_files_scopes()
    {
        await RefreshAsync();

        var request = Assert.Single(_endpoint.Requests);
        Assert.Equal("refresh_token", request.GrantType);
        Assert.Equal(Account.RefreshToken, request.RefreshToken);
        Assert.Equal("9d1c250a-e61b-44d9-88ed-5944d1962f5e", request.ClientId);
        Assert.Equal("user:inference user:profile", request.Scope);
        Assert.Equal(200, request.Status);
    }

    [Fact]
    public async Task Refreshes_chain_and_the_spent_refresh_token_is_refused_without_naming_it()
    {
        await RefreshAsync();
        await RefreshAsync(); // uses the rotated token from the file
        Assert.Equal([200, 200], _endpoint.Requests.Select(r => r.Status));
        Assert.False(_endpoint.IsValid(Account.RefreshToken));

        KonsoleSandbox.WriteCredentials(Account, Now); // the original login again: its refresh token is spent
        var written = File.ReadAllBytes(CredentialsPath);
        var refused = await Assert.ThrowsAsync<OAuthRefreshException>(RefreshAsync);

        Assert.False(refused.Retryable);
        Assert.Equal("the token endpoint refused the refresh token (400 invalid_grant)", refused.Message);
        AssertNoSecrets(refused);
        Assert.Equal(written, File.ReadAllBytes(CredentialsPath));
    }

    [Fact]
    public async Task A_reply_without_expires_in_keeps_its_new_tokens_with_an_assumed_lifetime()
    {
        _endpoint.ExpiresIn = null; // OAuth only recommends it: the refresh token is spent all the same

        var refreshed = await RefreshAsync();

        Assert.Equal((Now + OAuthRefresher.AssumedLifetime, true), (refreshed.ExpiresAt, refreshed.LifetimeAssumed));
        var oauth = ReadCredentials()["claudeAiOauth"]!;
        var issued = Assert.Single(_endpoint.Issued);
        Assert.Equal((issued.AccessToken, issued.RefreshToken), ((string?)oauth["accessToken"], (string?)oauth["refreshToken"]));
        Assert.Equal((Now + OAuthRefresher.AssumedLifetime).ToUnixTimeMilliseconds(), (long)oauth["expiresAt"]!);
        await RefreshAsync(); // the next refresh spends the new refresh token (the old one is refused)
        Assert.Equal(2, _endpoint.Issued.Count);
    }

    [Fact]
    public async Task A_credentials_file_that_is_a_symbolic_link_is_refreshed_in_its_target_and_stays_a_link()
    {
        var target = Path.Combine(_sandbox.Root, "shared-credentials.json");
        File.Move(CredentialsPath, target);
        File.CreateSymbolicLink(CredentialsPath, target);

        await RefreshAsync();

        Assert.Equal(target, new FileInfo(CredentialsPath).LinkTarget); // before: replaced by a file, the target keeping the spent token
        Assert.Equal(_endpoint.LatestRefreshToken, (string?)JsonNode.Parse(File.ReadAllText(target))!["claudeAiOauth"]!["refreshToken"]);
    }

    [Fact]
    public async Task Without_a_rotated_token_in_the_reply_the_old_refresh_token_is_kept()
    {
        _endpoint.RotateRefreshTokens = false;

        await RefreshAsync();

        var oauth = ReadCredentials()["claudeAiOauth"]!;
        Assert.Equal(Account.RefreshToken, (string?)oauth["refreshToken"]);
        Assert.Equal(_endpoint.LatestAccessToken, (string?)oauth["accessToken"]);
    }

    [Fact]
    public async Task The_file_is_0600_after_the_write_and_no_temp_file_is_left()
    {
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(CredentialsPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        await RefreshAsync();

        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(CredentialsPath));
        Assert.Equal([AccountCredentials.FileName], Directory.GetFiles(Account.ConfigDir).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    [InlineData(429)]
    [InlineData(401)] // invalid_client: not the token's fault
    [InlineData(403)] // as a proxy's page: was taken for a refused token, and the account waited for a new login
    public async Task A_server_error_429_or_a_refusal_other_than_invalid_grant_is_retryable_leaves_the_file_alone_and_spends_nothing(int status)
    {
        var written = File.ReadAllBytes(CredentialsPath);
        _endpoint.FailNext(status);

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(RefreshAsync);

        Assert.True(failed.Retryable);
        Assert.Contains(status.ToString(), failed.Message);
        AssertNoSecrets(failed);
        Assert.Equal(written, File.ReadAllBytes(CredentialsPath));
        await RefreshAsync(); // the retry works
        Assert.Equal([status, 200], _endpoint.Requests.Select(r => r.Status));
    }

    [Fact]
    public async Task The_file_for_the_new_tokens_is_made_before_the_refresh_token_is_spent()
    {
        _endpoint.Hold();

        var refresh = OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None);
        await _endpoint.WaitForRequestAsync(_ => true, Timeout);
        var whileSent = Directory.GetFiles(Account.ConfigDir).Select(Path.GetFileName).ToList();
        _endpoint.Release();
        await refresh;

        // A config dir that cannot take that file fails the refresh there, with the refresh token unspent.
        Assert.Contains(whileSent, name => name!.StartsWith(AccountCredentials.FileName + ".", StringComparison.Ordinal) && name.EndsWith(".tmp", StringComparison.Ordinal));
        Assert.Equal([AccountCredentials.FileName], Directory.GetFiles(Account.ConfigDir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task What_another_writer_put_in_the_file_while_the_request_was_out_is_kept()
    {
        _endpoint.Hold();
        var refresh = OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None);
        await _endpoint.WaitForRequestAsync(_ => true, Timeout);
        var meanwhile = ReadCredentials();
        meanwhile["mcpOAuth"] = new JsonObject { ["server"] = "written meanwhile" }; // as the CLI would
        File.WriteAllText(CredentialsPath, meanwhile.ToJsonString());
        _endpoint.Release();
        await refresh;

        var after = ReadCredentials();
        Assert.Equal("written meanwhile", (string?)after["mcpOAuth"]!["server"]);
        Assert.Equal(Assert.Single(_endpoint.Issued).RefreshToken, (string?)after["claudeAiOauth"]!["refreshToken"]);
    }

    [Fact]
    public async Task A_login_written_while_the_request_was_out_is_kept_not_overwritten_with_the_tokens_issued()
    {
        _endpoint.Hold();
        var refresh = OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None);
        await _endpoint.WaitForRequestAsync(_ => true, Timeout);
        var login = Account with { AccessToken = "sk-ant-oat01-new-login", RefreshToken = "sk-ant-ort01-new-login" };
        KonsoleSandbox.WriteCredentials(login, Now.AddHours(8)); // `claude login` while ours was out
        var written = File.ReadAllBytes(CredentialsPath);
        _endpoint.Release();

        var refreshed = await refresh;

        Assert.Equal(Now.AddHours(8), refreshed.ExpiresAt);
        Assert.Equal(written, File.ReadAllBytes(CredentialsPath));
        Assert.Equal(200, Assert.Single(_endpoint.Requests).Status); // issued, and left unused
        Assert.Empty(Directory.GetFiles(Account.ConfigDir, "*.tmp"));
    }

    [Fact]
    public async Task A_refresh_token_refused_because_the_cli_refreshed_the_login_meanwhile_leaves_the_clis_login_as_the_refresh()
    {
        _endpoint.FailNext(400); // invalid_grant: the CLI spent the refresh token first
        _endpoint.Hold();
        var refresh = OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None);
        await _endpoint.WaitForRequestAsync(_ => true, Timeout);
        var cli = Account with { AccessToken = "sk-ant-oat01-cli-new", RefreshToken = "sk-ant-ort01-cli-new" };
        KonsoleSandbox.WriteCredentials(cli, Now.AddHours(8)); // the CLI's own refresh, written while ours was out
        var written = File.ReadAllBytes(CredentialsPath);
        _endpoint.Release();

        var refreshed = await refresh;

        Assert.Equal(Now.AddHours(8), refreshed.ExpiresAt);
        Assert.Equal(written, File.ReadAllBytes(CredentialsPath));
        Assert.Equal(400, Assert.Single(_endpoint.Requests).Status);
    }

    [Fact]
    public async Task New_tokens_that_cannot_be_put_in_place_are_kept_in_their_file_which_the_error_names()
    {
        _endpoint.Hold();
        var refresh = OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None);
        await _endpoint.WaitForRequestAsync(_ => true, Timeout);
        File.Delete(CredentialsPath);
        Directory.CreateDirectory(CredentialsPath); // nothing can be renamed over it now
        _endpoint.Release(); // the refresh token is spent

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(() => refresh);

        var kept = Assert.Single(Directory.GetFiles(Account.ConfigDir));
        Assert.False(failed.Retryable);
        Assert.Contains($"written to {kept}, but putting that file in place of {CredentialsPath} failed", failed.Message);
        Assert.Equal(Assert.Single(_endpoint.Issued).RefreshToken, (string?)JsonNode.Parse(File.ReadAllText(kept))!["claudeAiOauth"]!["refreshToken"]);
        AssertNoSecrets(failed);
    }

    [Fact]
    public async Task Two_refreshes_of_one_login_at_once_both_succeed_one_after_the_other()
    {
        _endpoint.Delay = TimeSpan.FromMilliseconds(300); // the second is asked while the first is at the endpoint

        var both = await Task.WhenAll(RefreshAsync(), RefreshAsync());

        Assert.Equal(2, both.Length);
        Assert.All(_endpoint.Requests, r => Assert.Equal(200, r.Status)); // the second sent the token the first got, not the spent one
        Assert.Equal(_endpoint.LatestRefreshToken, (string?)ReadCredentials()["claudeAiOauth"]!["refreshToken"]);
    }

    [Fact]
    public async Task A_redirect_is_not_followed_so_the_refresh_token_goes_nowhere_else()
    {
        var (redirector, url) = await LoopbackServer.StartAsync(context =>
        {
            context.Response.StatusCode = StatusCodes.Status307TemporaryRedirect; // a 307 keeps the method and the body
            context.Response.Headers.Location = _endpoint.Url;
            return Task.CompletedTask;
        });
        await using var _ = redirector;
        using var client = OAuthRefresher.CreateClient();

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(
            () => OAuthRefresher.RefreshAsync(client, url + FakeTokenEndpoint.TokenPath, Account.ConfigDir, _time, CancellationToken.None));

        Assert.Contains("307", failed.Message);
        Assert.Empty(_endpoint.Requests);
        Assert.True(_endpoint.IsValid(Account.RefreshToken));
    }

    [Theory]
    [InlineData(400, "{\"error\":\"TOKEN\"}")]
    [InlineData(400, "{\"error\":\"invalid_grant\",\"error_description\":\"refresh token TOKEN was revoked\"}")]
    [InlineData(401, "{\"error\":{\"type\":\"authentication_error\",\"message\":\"bad token TOKEN\"}}")]
    [InlineData(502, "<html>upstream refused TOKEN</html>")]
    [InlineData(200, "refreshed TOKEN")]
    [InlineData(200, "{\"token\":\"TOKEN\"}")]
    public async Task A_reply_that_echoes_the_refresh_token_is_never_quoted_in_the_failure(int status, string reply)
    {
        var (echo, url) = await LoopbackServer.StartAsync(async context =>
        {
            var sent = (string?)JsonNode.Parse(await new StreamReader(context.Request.Body).ReadToEndAsync())!["refresh_token"];
            context.Response.StatusCode = status;
            await context.Response.WriteAsync(reply.Replace("TOKEN", sent));
        });
        await using var _ = echo;

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(
            () => OAuthRefresher.RefreshAsync(_http, url + FakeTokenEndpoint.TokenPath, Account.ConfigDir, _time, CancellationToken.None));

        AssertNoSecrets(failed);
    }

    [Fact]
    public async Task A_timeout_is_retryable()
    {
        _endpoint.Delay = TimeSpan.FromSeconds(30);
        using var impatient = new HttpClient { Timeout = TimeSpan.FromMilliseconds(200) };

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(
            () => OAuthRefresher.RefreshAsync(impatient, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None));

        Assert.True(failed.Retryable);
        Assert.Contains("in time", failed.Message);
        AssertNoSecrets(failed);
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_retryable()
    {
        var url = _endpoint.Url;
        await _endpoint.DisposeAsync();

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(
            () => OAuthRefresher.RefreshAsync(_http, url, Account.ConfigDir, _time, CancellationToken.None));

        Assert.True(failed.Retryable);
        Assert.Contains("could not reach the token endpoint", failed.Message);
    }

    [Fact]
    public async Task The_callers_cancellation_is_a_cancellation_not_a_failure()
    {
        _endpoint.Delay = TimeSpan.FromSeconds(30);
        using var cts = new CancellationTokenSource();
        var refresh = OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, cts.Token);
        await _endpoint.WaitForRequestAsync(_ => true, Timeout);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => refresh);
        Assert.True(_endpoint.IsValid(Account.RefreshToken));
    }

    [Fact]
    public async Task A_missing_file_is_a_clear_non_retryable_failure()
    {
        File.Delete(CredentialsPath);

        var failed = await Assert.ThrowsAsync<OAuthRefreshException>(RefreshAsync);

        Assert.False(failed.Retryable);
        Assert.Equal($"there is no OAuth login to refresh: {CredentialsPath} does not exist", failed.Message);
        Assert.Empty(_endpoint.Requests);
    }

    [Fact]
    public async Task A_file_without_a_refresh_token_is_non_retryable_and_one_with_broken_json_is_tried_again()
    {
        var credentials = ReadCredentials();
        credentials["claudeAiOauth"]!.AsObject().Remove("refreshToken");
        File.WriteAllText(CredentialsPath, credentials.ToJsonString());
        var noToken = await Assert.ThrowsAsync<OAuthRefreshException>(RefreshAsync);

        File.WriteAllText(CredentialsPath, $"{{\"claudeAiOauth\":{{\"accessToken\":\"{Account.AccessToken}");
        var broken = await Assert.ThrowsAsync<OAuthRefreshException>(RefreshAsync);

        Assert.False(noToken.Retryable);
        Assert.Contains("no refreshToken", noToken.Message);
        Assert.True(broken.Retryable); // as a file caught while another writer rewrites it
        Assert.Contains("not valid JSON", broken.Message);
        AssertNoSecrets(broken);
        Assert.Empty(_endpoint.Requests);
    }

    [Fact]
    public async Task A_reader_during_many_refreshes_always_sees_a_whole_file()
    {
        using var done = new CancellationTokenSource();
        var reader = Task.Run(() =>
        {
            var reads = 0;
            do // at least once, however late this thread starts
            {
                var text = File.ReadAllText(CredentialsPath);
                var oauth = JsonNode.Parse(text)!["claudeAiOauth"]!;
                Assert.StartsWith("sk-ant-ort01-", (string?)oauth["refreshToken"]);
                Assert.Equal("default_claude_max_20x", (string?)oauth["rateLimitTier"]);
                reads++;
            } while (!done.IsCancellationRequested);
            return reads;
        });

        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            for (var i = 0; i < 50; i++)
                await RefreshAsync();
        }
        finally
        {
            await done.CancelAsync();
        }

        var reads = await reader.WaitAsync(Timeout);
        Assert.True(reads > 0);
        Assert.Equal(50, _endpoint.Issued.Count);
        Assert.Equal(_endpoint.LatestRefreshToken, (string?)ReadCredentials()["claudeAiOauth"]!["refreshToken"]);
        Assert.Equal([AccountCredentials.FileName], Directory.GetFiles(Account.ConfigDir).Select(Path.GetFileName));
        output.WriteLine($"FIGURES refreshes and a reader: 50 refreshes in {clock.Elapsed.TotalSeconds:0.00}s, each one token request " +
            $"({_endpoint.Requests.Count} in all); {reads:N0} reads of the file meanwhile, every one whole; no temp file left");
    }

    [Fact]
    public async Task The_fake_endpoint_answers_a_body_that_is_not_json_with_invalid_request()
    {
        using var content = new StringContent("grant_type=refresh_token", Encoding.UTF8, "application/x-www-form-urlencoded");

        using var response = await _http.PostAsync(_endpoint.Url, content);

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("invalid_request", (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]);
        Assert.Equal(400, Assert.Single(_endpoint.Requests).Status);
    }

    private Task<OAuthRefreshed> RefreshAsync() =>
        OAuthRefresher.RefreshAsync(_http, _endpoint.Url, Account.ConfigDir, _time, CancellationToken.None);

    private JsonNode ReadCredentials() => JsonNode.Parse(File.ReadAllText(CredentialsPath))!;

    private void AssertNoSecrets(Exception e)
    {
        Assert.DoesNotContain("sk-ant", e.Message);
        Assert.DoesNotContain(Account.RefreshToken, e.ToString());
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
