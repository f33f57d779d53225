using System.Net;
using System.Text.Json;
using Konsole.Actors.Accounts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Konsole.Testing.FakeApi;

/// <summary>
/// One request to the fake token endpoint, as it arrived. <see cref="Status"/> is what it was answered:
/// 0 while it is still waiting out <see cref="FakeTokenEndpoint.Delay"/>, and for good when the client went away first.
/// </summary>
public sealed record TokenRequest(int Index, string? GrantType, string? RefreshToken, string? ClientId, string? Scope, int Status);

/// <summary>Tokens the fake endpoint issued in one successful refresh.</summary>
public sealed record IssuedTokens(string AccessToken, string? RefreshToken, TimeSpan ExpiresIn);

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
    private readonly List<TokenRequest> _requests = [];
    private readonly List<IssuedTokens> _issued = [];
    private readonly List<(Func<TokenRequest, bool> Match, TaskCompletionSource<TokenRequest> Found)> _waiters = [];
    private TimeSpan _expiresIn = TimeSpan.FromHours(8);
    private TimeSpan _delay;
    private bool _rotate = true;
    private int _failStatus;
    private int _failTimes;

    private FakeTokenEndpoint(WebApplication app) => _app = app;

    /// <summary>The token endpoint, e.g. <c>http://127.0.0.1:43211/v1/oauth/token</c>.</summary>
    public string Url { get; private set; } = "";

    /// <summary>Every request, in arrival order.</summary>
    public IReadOnlyList<TokenRequest> Requests
    {
        get { lock (_gate) return _requests.ToArray(); }
    }

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

    /// <summary>The <c>expires_in</c> of issued access tokens.</summary>
    public TimeSpan ExpiresIn
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
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));

        var app = builder.Build();
        var endpoint = new FakeTokenEndpoint(app);
        app.Run(endpoint.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        endpoint.Url = address.TrimEnd('/') + TokenPath;
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
    public async Task<TokenRequest> WaitForRequestAsync(Func<TokenRequest, bool> match, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<TokenRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var seen = _requests.FirstOrDefault(match);
            if (seen is not null)
                return seen;
            _waiters.Add((match, found));
        }

        try
        {
            return await found.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                _waiters.RemoveAll(w => w.Found == found);
                var requests = _requests.Count == 0 ? "  (none)" : string.Join("\n", _requests.Select(r => "  " + r));
                throw new TimeoutException($"No matching request to the fake token endpoint at {Url} within {timeout}. Seen:\n{requests}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        await _stopping.CancelAsync(); // ends delayed answers at once
        await _app.StopAsync();
        await _app.DisposeAsync();
        lock (_gate)
        {
            foreach (var (_, found) in _waiters)
                found.TrySetException(new ObjectDisposedException(nameof(FakeTokenEndpoint)));
            _waiters.Clear();
        }
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
            var index = Record(fields);
            var delay = Delay;
            if (delay > TimeSpan.Zero)
                await Task.Delay(delay, cts.Token);

            var (status, reply) = parsed ? Answer(fields) : (400, Error("invalid_request", "The request body is not a JSON object"));
            Answered(index, status);
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
                ["expires_in"] = (long)issued.ExpiresIn.TotalSeconds,
                ["scope"] = request.Scope,
            };
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

    private int Record(TokenRequest request)
    {
        lock (_gate)
        {
            var recorded = request with { Index = _requests.Count };
            _requests.Add(recorded);
            Notify(recorded);
            return recorded.Index;
        }
    }

    private void Answered(int index, int status)
    {
        lock (_gate)
        {
            var answered = _requests[index] with { Status = status };
            _requests[index] = answered;
            Notify(answered);
        }
    }

    private void Notify(TokenRequest request)
    {
        foreach (var waiter in _waiters.ToList())
        {
            try
            {
                if (!waiter.Match(request))
                    continue;
                waiter.Found.TrySetResult(request);
            }
            catch (Exception e)
            {
                waiter.Found.TrySetException(e);
            }
            _waiters.Remove(waiter);
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
