using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Konsole.Testing.FakeApi;

/// <summary>
/// A stand-in for the Anthropic Messages API on loopback, for the real Claude Code CLI (start it with
/// <see cref="CliEnvironment"/>). A conversation turn (POST /v1/messages) is answered
/// <c>echo: &lt;LastUserText&gt;</c>, streamed as the real API streams, with the rate-limit headers an OAuth
/// account gets. Directives in the last typed text:
/// <c>[[api-slow:N:MS]]</c> streams the answer as N text deltas MS ms apart;
/// <c>[[api-429]]</c> answers 429 <c>rate_limit_error</c>, the limit rejected until an hour from now;
/// <c>[[api-bash:COMMAND]]</c> answers a call of the CLI's <c>Bash</c> tool running COMMAND (anything up to the
/// first <c>]]</c>), and the request that brings its result back <c>done: &lt;the tool's result&gt;</c>. The CLI
/// runs it only when allowed to without asking, e.g. with <c>--allowedTools Bash</c>.
/// Anything else it is asked gets a quick small answer and lands in <see cref="SideRequests"/>.
/// </summary>
public sealed class FakeMessagesApi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly RequestLog<RecordedRequest> _requests = new("the fake Messages API");
    private readonly RequestLog<SideRequest> _sideRequests = new("the fake Messages API");
    private int _openRequests;
    private int _maxConcurrentRequests;

    private FakeMessagesApi(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";

    /// <summary>The conversation-turn requests, in arrival order (recorded on arrival, before the answer).</summary>
    public IReadOnlyList<RecordedRequest> Requests => _requests.Items;

    /// <summary>Everything else: HEAD /api/hello, count_tokens, unknown paths, unreadable bodies.</summary>
    public IReadOnlyList<SideRequest> SideRequests => _sideRequests.Items;

    /// <summary>Conversation-turn requests being answered right now.</summary>
    public int OpenRequests => Volatile.Read(ref _openRequests);

    /// <summary>The most conversation-turn requests ever answered at the same time.</summary>
    public int MaxConcurrentRequests => Volatile.Read(ref _maxConcurrentRequests);

    /// <summary>
    /// The environment a real CLI needs to talk to this fake and to nothing else: no credentials (those
    /// come from CLAUDE_CONFIG_DIR/.credentials.json). Still remove CLAUDECODE, ANTHROPIC_API_KEY and
    /// CLAUDE_CODE_OAUTH_TOKEN inherited from the host.
    /// </summary>
    public static IReadOnlyDictionary<string, string> CliEnvironment(string baseUrl) => new Dictionary<string, string>
    {
        ["ANTHROPIC_BASE_URL"] = baseUrl,
        // Without it the CLI probes HEAD <base>/api/hello and calls api.anthropic.com for feature
        // flags, bootstrap and event logging at every start.
        ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1",
        ["DISABLE_TELEMETRY"] = "1",
        ["DISABLE_ERROR_REPORTING"] = "1",
        ["DISABLE_AUTOUPDATER"] = "1",
        // An HTTP(S)_PROXY inherited from the host would otherwise carry the loopback requests too.
        ["NO_PROXY"] = "127.0.0.1,localhost",
    };

    public static async Task<FakeMessagesApi> StartAsync()
    {
        FakeMessagesApi? api = null;
        // Prompts of megabytes are real.
        var (app, baseUrl) = await LoopbackServer.StartAsync(context => api!.HandleAsync(context), limits => limits.MaxRequestBodySize = null);
        api = new FakeMessagesApi(app) { BaseUrl = baseUrl };
        return api;
    }

    /// <summary>
    /// The first request, already recorded or still to come, that <paramref name="match"/> accepts.
    /// Throws <see cref="TimeoutException"/> listing what was seen.
    /// </summary>
    public Task<RecordedRequest> WaitForRequestAsync(Func<RecordedRequest, bool> match, TimeSpan timeout) =>
        _requests.WaitAsync(match, timeout, () => SideRequests.Count == 0 ? "" : "\nside requests: " + string.Join(", ", SideRequests));

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        await _stopping.CancelAsync(); // ends slow streams at once
        await _app.StopAsync();
        await _app.DisposeAsync();
        _requests.Close();
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        try
        {
            var request = context.Request;
            var body = await new StreamReader(request.Body, Encoding.UTF8).ReadToEndAsync(cts.Token);
            var path = request.Path + request.QueryString;
            if (HttpMethods.IsPost(request.Method) && request.Path.Equals("/v1/messages", StringComparison.OrdinalIgnoreCase))
                await MessagesAsync(context, path, body, cts.Token);
            else
                await SideAsync(context, path, body);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away (a killed CLI) or the fake is stopping: then cut the connection, so a
            // half-sent stream reads as broken rather than complete.
            context.Abort();
        }
    }

    private async Task MessagesAsync(HttpContext context, string path, string body, CancellationToken ct)
    {
        var headers = context.Request.Headers;
        RecordedRequest recorded;
        try
        {
            recorded = RecordedRequest.Parse(path, headers.Authorization.FirstOrDefault(), headers["x-api-key"].FirstOrDefault(),
                headers["X-Claude-Code-Session-Id"].FirstOrDefault(), body);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            RecordSide(new SideRequest(DateTimeOffset.UtcNow, context.Request.Method, path, headers.Authorization.FirstOrDefault(), body));
            await ErrorAsync(context.Response, 400, "invalid_request_error", $"The request body is not a Messages API request: {e.Message}");
            return;
        }

        // Counted as open before it is visible to waiters, so a test that saw it also sees it open.
        var open = Interlocked.Increment(ref _openRequests);
        for (var max = Volatile.Read(ref _maxConcurrentRequests); open > max; max = Volatile.Read(ref _maxConcurrentRequests))
            Interlocked.CompareExchange(ref _maxConcurrentRequests, open, max);
        try
        {
            recorded = _requests.Add(index => recorded with { Index = index });
            await FakeReplies.AnswerAsync(context.Response, recorded, recorded.Index + 1, ct);
        }
        finally
        {
            Interlocked.Decrement(ref _openRequests);
        }
    }

    private async Task SideAsync(HttpContext context, string path, string body)
    {
        var request = context.Request;
        RecordSide(new SideRequest(DateTimeOffset.UtcNow, request.Method, path, request.Headers.Authorization.FirstOrDefault(), body));
        var response = context.Response;
        if (HttpMethods.IsHead(request.Method))
            response.StatusCode = 200;
        else if (HttpMethods.IsPost(request.Method) && request.Path.Equals("/v1/messages/count_tokens", StringComparison.OrdinalIgnoreCase))
            await response.WriteAsJsonAsync(new { input_tokens = Math.Max(1, body.Length / 4) });
        else if (HttpMethods.IsGet(request.Method) && request.Path.Equals("/v1/models", StringComparison.OrdinalIgnoreCase))
            await response.WriteAsJsonAsync(new { data = Array.Empty<object>(), has_more = false, first_id = (string?)null, last_id = (string?)null });
        else
            await ErrorAsync(response, 404, "not_found_error", $"{request.Method} {request.Path} is not served by the fake Messages API");
    }

    private void RecordSide(SideRequest side) => _sideRequests.Add(_ => side);

    private static Task ErrorAsync(HttpResponse response, int status, string type, string message)
    {
        response.StatusCode = status;
        return response.WriteAsJsonAsync(new { type = "error", error = new { type, message } });
    }
}
