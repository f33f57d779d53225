using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Konsole.Actors.Processes;

namespace Konsole.Actors.Accounts;

/// <summary>
/// A refreshed login: the new access token is in the file and lives until <paramref name="ExpiresAt"/> (assumed, when
/// <paramref name="LifetimeAssumed"/>: the reply said nothing of it).
/// </summary>
public sealed record OAuthRefreshed(DateTimeOffset ExpiresAt, bool LifetimeAssumed = false);

/// <summary>
/// A refresh that did not happen. <see cref="Retryable"/>: the same refresh token may still work later
/// (server error, 429, timeout, no connection); otherwise the login needs a person (a new <c>claude login</c>).
/// Messages never hold token values.
/// </summary>
public sealed class OAuthRefreshException(string message, bool retryable) : Exception(message)
{
    public bool Retryable { get; } = retryable;
}

/// <summary>Refreshes an account's OAuth login the way the Claude Code CLI does, and writes it back to its config dir.</summary>
public static class OAuthRefresher
{
    public const string ClientId = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

    public const string DefaultTokenEndpoint = "https://platform.claude.com/v1/oauth/token";

    private const string DefaultScope = "user:inference user:profile";

    /// <summary>
    /// The lifetime taken for a new access token whose reply has no <c>expires_in</c> (OAuth only recommends it): short, so the
    /// next refresh comes early rather than after the token has run out.
    /// </summary>
    public static readonly TimeSpan AssumedLifetime = TimeSpan.FromHours(1);

    // One refresh of a login at a time in this process (one outlives the account actor that started it): the second then reads
    // the token the first wrote, instead of spending the same one again.
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);

    /// <summary>
    /// The client for the token endpoint: it follows no redirect (a 307 would send the refresh token on to wherever it
    /// points) and gives up after 30 s.
    /// </summary>
    public static HttpClient CreateClient() =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// Refreshes the login in <paramref name="configDir"/>: reads <c>.credentials.json</c>, POSTs the refresh to
    /// <paramref name="tokenEndpoint"/>, and writes the new tokens back atomically (a 0600 temp file in the same
    /// directory, flushed to disk, renamed over the old one), keeping every other field. Stores the rotated refresh
    /// token (the old one when the reply has none) and <c>expiresAt</c> = now + <c>expires_in</c> (+ <see cref="AssumedLifetime"/>
    /// when the reply has none).
    /// Throws <see cref="OAuthRefreshException"/>; cancellation of <paramref name="ct"/> surfaces as
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task<OAuthRefreshed> RefreshAsync(
        HttpClient http, string tokenEndpoint, string configDir, TimeProvider time, CancellationToken ct)
    {
        // A symbolic link's target is what is rewritten (renamed over, the link would become a file of its own, and its
        // target keep the spent refresh token); a link that leads nowhere reads as a missing file.
        var path = Posix.RealPath(Path.Combine(configDir, AccountCredentials.FileName));
        var gate = Gates.GetOrAdd(path, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await RefreshFileAsync(http, tokenEndpoint, path, time, ct).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private static async Task<OAuthRefreshed> RefreshFileAsync(HttpClient http, string tokenEndpoint, string path, TimeProvider time, CancellationToken ct)
    {
        var (root, oauth, refreshToken) = await ReadAsync(path, ct).ConfigureAwait(false);
        // Made before the refresh token is spent: a config dir that cannot take the new tokens must not cost the login.
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        var file = CreateTemp(temp, path);
        var written = false; // the temp file holds the whole new file
        try
        {
            var body = new JsonObject
            {
                ["grant_type"] = "refresh_token",
                ["refresh_token"] = refreshToken,
                ["client_id"] = ClientId,
                ["scope"] = ScopeOf(oauth),
            };
            string reply;
            try
            {
                reply = await PostAsync(http, tokenEndpoint, body.ToJsonString(), ct).ConfigureAwait(false);
            }
            catch (OAuthRefreshException)
            {
                // Refused because another writer (the CLI's own refresh, a login) spent the token first: its login is the refresh.
                if (await RefreshedMeanwhileAsync(path, refreshToken).ConfigureAwait(false) is { } meanwhile)
                    return new OAuthRefreshed(meanwhile);
                throw;
            }
            var (accessToken, rotatedRefreshToken, expiresIn) = ParseReply(reply);
            var expiresAt = DateTimeOffset.FromUnixTimeMilliseconds((time.GetUtcNow() + (expiresIn ?? AssumedLifetime)).ToUnixTimeMilliseconds()); // as the file keeps it
            // The file as it is now: another writer (the CLI, a login) may have changed other fields while the request was out.
            (root, oauth) = await LatestOrAsync(path, root, oauth).ConfigureAwait(false);
            oauth["accessToken"] = accessToken;
            oauth["refreshToken"] = rotatedRefreshToken ?? refreshToken;
            oauth["expiresAt"] = expiresAt.ToUnixTimeMilliseconds();
            try
            {
                await WriteAsync(file, Encoding.UTF8.GetBytes(root.ToJsonString())).ConfigureAwait(false);
                // A login written while the request was out or this file was written and synced (`claude login`, the CLI's own
                // refresh) is newer than the one this refresh started from: it is kept, and the tokens just issued go unused.
                // Read last thing before the rename, so only one written in between is lost.
                if (await RefreshedMeanwhileAsync(path, refreshToken).ConfigureAwait(false) is { } meanwhileLogin)
                    return new OAuthRefreshed(meanwhileLogin);
                written = true;
                File.Move(temp, path, overwrite: true); // a reader sees the old file or the new one, never half of one
                // Else a power loss could bring back the old file, whose refresh token is spent now.
                Posix.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The old refresh token is spent by now: the new one is the login. Written whole, it is kept where it is.
                throw new OAuthRefreshException(written
                    ? $"the token endpoint issued new tokens, written to {temp}, but putting that file in place of {path} failed " +
                      $"({e.GetType().Name}: {e.Message}); move it there by hand to keep the login"
                    : $"the token endpoint issued new tokens but writing them beside {path} failed ({e.GetType().Name}: {e.Message}); the login must be renewed",
                    retryable: false);
            }
            return new OAuthRefreshed(expiresAt, LifetimeAssumed: expiresIn is null);
        }
        finally
        {
            await file.DisposeAsync().ConfigureAwait(false);
            if (!written)
                TryDelete(temp); // (once in place, it has no name of its own left)
        }
    }

    /// <summary>The expiry of the login in the file when it holds another refresh token than <paramref name="sent"/>, with an expiry.</summary>
    private static async Task<DateTimeOffset?> RefreshedMeanwhileAsync(string path, string sent)
    {
        try
        {
            var (_, oauth, refreshToken) = await ReadAsync(path, CancellationToken.None).ConfigureAwait(false);
            return refreshToken != sent && oauth["expiresAt"] is JsonValue e && e.TryGetValue<long>(out var ms)
                && ms > DateTimeOffset.MinValue.ToUnixTimeMilliseconds() && ms < DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
                : null;
        }
        catch (OAuthRefreshException)
        {
            return null;
        }
    }

    /// <summary>The file read again, or what was read before when it can no longer be read (the new tokens must be written).</summary>
    private static async Task<(JsonObject Root, JsonObject OAuth)> LatestOrAsync(string path, JsonObject root, JsonObject oauth)
    {
        try
        {
            var (latest, latestOAuth, _) = await ReadAsync(path, CancellationToken.None).ConfigureAwait(false);
            return (latest, latestOAuth);
        }
        catch (OAuthRefreshException)
        {
            return (root, oauth);
        }
    }

    private static async Task<(JsonObject Root, JsonObject OAuth, string RefreshToken)> ReadAsync(string path, CancellationToken ct)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new OAuthRefreshException($"there is no OAuth login to refresh: {path} does not exist", retryable: false);
        }
        // Retryable: the CLI may be rewriting the file (not every writer replaces it whole), and the next read may find it whole.
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OAuthRefreshException($"cannot read {path} ({e.GetType().Name}: {e.Message})", retryable: true);
        }
        catch (JsonException)
        {
            // JsonException's message may quote the text around the error, which could be a token.
            throw new OAuthRefreshException($"{path} is not valid JSON", retryable: true);
        }

        if (root is not JsonObject rootObject || rootObject["claudeAiOauth"] is not JsonObject oauth)
            throw new OAuthRefreshException($"{path} holds no claudeAiOauth login", retryable: false);
        if (oauth["refreshToken"] is not JsonValue value || !value.TryGetValue<string>(out var refreshToken) || refreshToken.Length == 0)
            throw new OAuthRefreshException($"{path} holds no refreshToken", retryable: false);
        return (rootObject, oauth, refreshToken);
    }

    private static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(3650);

    private static string ScopeOf(JsonObject oauth)
    {
        if (oauth["scopes"] is not JsonArray scopes)
            return DefaultScope;
        var names = scopes.OfType<JsonValue>()
            .Select(s => s.TryGetValue<string>(out var name) ? name : null)
            .OfType<string>()
            .ToList();
        return names.Count == 0 ? DefaultScope : string.Join(' ', names);
    }

    private static async Task<string> PostAsync(HttpClient http, string tokenEndpoint, string json, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, tokenEndpoint)
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        HttpStatusCode status;
        string reply;
        try
        {
            using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
            status = response.StatusCode;
            reply = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new OAuthRefreshException($"the token endpoint did not answer in time (timeout {http.Timeout.TotalSeconds:0.###} s)", retryable: true);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            var reason = e is HttpRequestException { HttpRequestError: var error and not HttpRequestError.Unknown } ? error.ToString() : e.GetType().Name;
            throw new OAuthRefreshException($"could not reach the token endpoint ({reason})", retryable: true);
        }

        var code = (int)status;
        if (code is >= 200 and < 300)
            return reply;
        var oauthError = ErrorCodeOf(reply);
        var detail = oauthError is null ? $"{code}" : $"{code} {oauthError}";
        if (code is >= 500 or 429 or 408)
            throw new OAuthRefreshException($"the token endpoint failed ({detail})", retryable: true);
        // Only invalid_grant says the refresh token itself is spent or revoked. Any other refusal (a proxy's 403 page, an
        // invalid_client) left it unspent: tried again with backoff, rather than waiting for a login nobody needs to redo.
        if (oauthError == "invalid_grant")
            throw new OAuthRefreshException($"the token endpoint refused the refresh token ({detail})", retryable: false);
        throw new OAuthRefreshException($"the token endpoint refused the request ({detail})", retryable: true);
    }

    /// <summary>The OAuth <c>error</c> code of an error reply, when it looks like one (never free text that could echo a token).</summary>
    private static string? ErrorCodeOf(string reply)
    {
        try
        {
            return JsonNode.Parse(reply) is JsonObject o && o["error"] is JsonValue v && v.TryGetValue<string>(out var error)
                && error.Length is > 0 and <= 64 && error.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or ':' or '-')
                && !error.Contains("sk-ant", StringComparison.OrdinalIgnoreCase)
                ? error
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static (string AccessToken, string? RefreshToken, TimeSpan? ExpiresIn) ParseReply(string reply)
    {
        JsonObject? o;
        try
        {
            o = JsonNode.Parse(reply) as JsonObject;
        }
        catch (JsonException)
        {
            o = null;
        }
        // Retryable: an odd 200 is more likely a proxy than a spent token; if the token was spent, the retry says so.
        if (o is null)
            throw new OAuthRefreshException("the token endpoint's reply is not a JSON object", retryable: true);
        if (o["access_token"] is not JsonValue a || !a.TryGetValue<string>(out var accessToken) || accessToken.Length == 0)
            throw new OAuthRefreshException("the token endpoint's reply has no access_token", retryable: true);
        // Without a usable expires_in the tokens are kept all the same: the refresh token may be spent, and the new one is the login.
        TimeSpan? expiresIn = o["expires_in"] is JsonValue e && e.TryGetValue<double>(out var seconds) && seconds > 0 && seconds <= MaxLifetime.TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : null;
        string? refreshToken = o["refresh_token"] is JsonValue r && r.TryGetValue<string>(out var rotated) && rotated.Length > 0 ? rotated : null;
        return (accessToken, refreshToken, expiresIn);
    }

    /// <summary>The temp file beside the target, created 0600 (never readable by others, even before the first byte).</summary>
    private static FileStream CreateTemp(string temp, string path)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.Asynchronous,
        };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            return new FileStream(temp, options);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OAuthRefreshException(
                $"cannot write beside {path} ({e.GetType().Name}: {e.Message}); nothing was refreshed",
                retryable: true);
        }
    }

    /// <summary>Writes the temp file and flushes it to disk.</summary>
    private static async Task WriteAsync(FileStream file, byte[] content)
    {
        await using (file)
        {
            // Not cancellable once started: a cancelled write would lose tokens the endpoint already rotated.
            await file.WriteAsync(content, CancellationToken.None).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind; it is 0600 and named *.tmp.
        }
    }
}
