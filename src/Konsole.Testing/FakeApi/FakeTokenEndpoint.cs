using System.Text.Json;
using Konsole.Actors.Accounts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Konsole.Testing.FakeApi;

/// <summary>
/// One request to the fake token endpoint, as it arrived. <see cref="Status"/> is what it was answered:
/// 0 while it is still waiting out <see cref="FakeTokenEndpoint.Delay"/> or a <see cref="FakeTokenEndpoint.Hold"/>, and for good when the client went away first.
/// </summary>
public sealed record TokenRequest(int Index, string? GrantType, string? RefreshToken, string? ClientId, string? Scope, int Status);

/// <summary>Tokens the fake endpoint issued in one successful refresh.</summary>
public sealed record IssuedTokens(string AccessToken, string? RefreshToken, TimeSpan? ExpiresIn);

/// <summary>
/// A stand-in for the OAuth token endpoint (POST /v1/oauth/token, JSON body) on loopback, with single-use refresh
/// tokens: a refresh spends its token and issues <c>sk-ant-oat01-fake-…</c> / <c>sk-ant-ort01-fake-…</c>. Seed
/// valid refresh tokens with <see cref="Accept"/>; a spent or unknown one gets 400 <c>invalid_grant</c>.
/// </summary>
public sealed class FakeTokenEndpoint : IAsyncDisposable
{
    public const string TokenPath = "/v1/oauth/token";

    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly HashSet<string> _valid = new(StringComparer.Ordinal);
    private readonly RequestLog<TokenRequest> _requests = new("the fake token endpoint");
    private readonly List<IssuedTokens> _issued = [];
    private TimeSpan? _expiresIn = TimeSpan.FromHours(8);
    private TimeSpan _delay;
    private TaskCompletionSource? _held;
    private bool _rotate = true;
    private int _failStatus;
    private int _failTimes;

    private FakeTokenEndpoint(WebApplication app) => _app = app;

    /// <summary>The token endpoint, e.g. <c>http://127.0.0.1:43211/v1/oauth/token</c>.</summary>
    public string Url { get; private set; } = "";

    /// <summary>Every request, in arrival order.</summary>
    public IReadOnlyList<TokenRequest> Requests => _requests.Items;

    /// <summary>What each successful refresh issued, in order.</summary>
    public IReadOnlyList<IssuedTokens> Issued
    {
        get { lock (_gate) return _issued.ToArray(); }
    }

    public string? LatestAccessToken
    {
        get { lock (_gate) return _issued.Count == 0 ? null : _issued[^1].AccessToken; }
    }

    public string? LatestRefreshToken
    {
        get { lock (_gate) return _issued.Count == 0 ? null : _issued[^1].RefreshToken; }
    }

    /// <summary>The <c>expires_in</c> of issued access tokens; null: replies have none (OAuth only recommends it).</summary>
    public TimeSpan? ExpiresIn
    {
        get { lock (_gate) return _expiresIn; }
        set { lock (_gate) _expiresIn = value; }
    }

    /// <summary>How long each request waits before it is answered (a client that gives up first spends nothing).</summary>
    public TimeSpan Delay
    {
        get { lock (_gate) return _delay; }
        set { lock (_gate) _delay = value; }
    }

    /// <summary>
    /// Requests from now on are recorded (so <see cref="WaitForRequestAsync"/> sees them) and then wait, unanswered, until
    /// <see cref="Release"/>: a test can look at a refresh while it is in flight, for as long as it takes.
    /// </summary>
    public void Hold()
    {
        lock (_gate)
            _held ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Answers the requests <see cref="Hold"/> keeps waiting (every one <see cref="WaitForRequestAsync"/> has seen among them).
    /// <paramref name="holdLater"/>: those that come after this call are held in turn (decided at once, so none slips through).
    /// </summary>
    public void Release(bool holdLater = false)
    {
        TaskCompletionSource? held;
        lock (_gate)
        {
            held = _held;
            _held = holdLater ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
        }
        held?.TrySetResult();
    }

    /// <summary>
    /// True (the default): each refresh spends its token and issues a new one. False: the reply has no
    /// <c>refresh_token</c> and the one used stays valid.
    /// </summary>
    public bool RotateRefreshTokens
    {
        get { lock (_gate) return _rotate; }
        set { lock (_gate) _rotate = value; }
    }

    public static async Task<FakeTokenEndpoint> StartAsync()
    {
        FakeTokenEndpoint? endpoint = null;
        var (app, baseUrl) = await LoopbackServer.StartAsync(context => endpoint!.HandleAsync(context));
        endpoint = new FakeTokenEndpoint(app) { Url = baseUrl + TokenPath };
        return endpoint;
    }

    /// <summary>Makes <paramref name="refreshToken"/> valid for one refresh (e.g. a sandbox account's).</summary>
    public void Accept(string refreshToken)
    {
        lock (_gate)
            _valid.Add(refreshToken);
    }

    /// <summary>Whether <paramref name="refreshToken"/> would be accepted now.</summary>
    public bool IsValid(string refreshToken)
    {
        lock (_gate)
            return _valid.Contains(refreshToken);
    }

    /// <summary>
    /// The next <paramref name="times"/> requests are answered <paramref name="statusCode"/> with an OAuth error
    /// body, before the refresh token is looked at (it is not spent).
    /// </summary>
    public void FailNext(int statusCode, int times = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(statusCode, 400);
        ArgumentOutOfRangeException.ThrowIfNegative(times);
        lock (_gate)
        {
            _failStatus = statusCode;
            _failTimes = times;
        }
    }

    /// <summary>
    /// The first request, already seen or still to come, that <paramref name="match"/> accepts; checked again when
    /// a request is answered. Throws <see cref="TimeoutException"/> listing what was seen.
    /// </summary>
    public Task<TokenRequest> WaitForRequestAsync(Func<TokenRequest, bool> match, TimeSpan timeout) => _requests.WaitAsync(match, timeout);

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        await _stopping.CancelAsync(); // ends delayed answers at once
        await _app.StopAsync();
        await _app.DisposeAsync();
        _requests.Close();
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (!HttpMethods.IsPost(request.Method) || !request.Path.Equals(TokenPath, StringComparison.OrdinalIgnoreCase))
        {
            await ErrorAsync(context.Response, 404, "not_found", $"{request.Method} {request.Path} is not served by the fake token endpoint");
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        try
        {
            var body = await new StreamReader(request.Body).ReadToEndAsync(cts.Token);
            var (parsed, fields) = Parse(body);
            Task? held;
            lock (_gate)
                held = _held?.Task; // before it is recorded: a test that saw it recorded and then releases releases it
            var index = _requests.Add(i => fields with { Index = i }).Index;
            var delay = Delay;
            if (delay > TimeSpan.Zero)
                await Task.Delay(delay, cts.Token);
            if (held is not null)
                await held.WaitAsync(cts.Token);

            var (status, reply) = parsed ? Answer(fields) : (400, Error("invalid_request", "The request body is not a JSON object"));
            _requests.Update(index, r => r with { Status = status });
            context.Response.StatusCode = status;
            await context.Response.WriteAsJsonAsync(reply, cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            context.Abort();
        }
    }

    private (int Status, object Reply) Answer(TokenRequest request)
    {
        lock (_gate)
        {
            if (_failTimes > 0)
            {
                _failTimes--;
                var code = _failStatus switch
                {
                    400 => "invalid_grant",
                    401 => "invalid_client",
                    429 or 503 => "temporarily_unavailable",
                    _ => "server_error",
                };
                return (_failStatus, Error(code, $"Injected failure ({_failStatus})"));
            }
            if (request.GrantType != "refresh_token")
                return (400, Error("unsupported_grant_type", "grant_type must be refresh_token"));
            if (request.ClientId != OAuthRefresher.ClientId)
                return (401, Error("invalid_client", "Unknown client_id"));
            if (string.IsNullOrEmpty(request.RefreshToken))
                return (400, Error("invalid_request", "refresh_token is required"));
            if (!_valid.Contains(request.RefreshToken))
                return (400, Error("invalid_grant", "Refresh token not found or invalid"));

            string? refreshToken = null;
            if (_rotate)
            {
                _valid.Remove(request.RefreshToken);
                refreshToken = $"sk-ant-ort01-fake-{Guid.NewGuid():N}";
                _valid.Add(refreshToken);
            }
            var issued = new IssuedTokens($"sk-ant-oat01-fake-{Guid.NewGuid():N}", refreshToken, _expiresIn);
            _issued.Add(issued);
            var reply = new Dictionary<string, object?>
            {
                ["token_type"] = "Bearer",
                ["access_token"] = issued.AccessToken,
                ["scope"] = request.Scope,
            };
            if (issued.ExpiresIn is { } expiresIn)
                reply["expires_in"] = (long)expiresIn.TotalSeconds;
            if (refreshToken is not null)
                reply["refresh_token"] = refreshToken;
            return (200, reply);
        }
    }

    private static (bool Parsed, TokenRequest Fields) Parse(string body)
    {
        var empty = new TokenRequest(0, null, null, null, null, 0);
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return (false, empty);
            return (true, empty with
            {
                GrantType = StringOf(root, "grant_type"),
                RefreshToken = StringOf(root, "refresh_token"),
                ClientId = StringOf(root, "client_id"),
                Scope = StringOf(root, "scope"),
            });
        }
        catch (JsonException)
        {
            return (false, empty);
        }
    }


    private static string? StringOf(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static Dictionary<string, object?> Error(string error, string description) =>
        new() { ["error"] = error, ["error_description"] = description };

    private static Task ErrorAsync(HttpResponse response, int status, string error, string description)
    {
        response.StatusCode = status;
        return response.WriteAsJsonAsync(Error(error, description));
    }
}
