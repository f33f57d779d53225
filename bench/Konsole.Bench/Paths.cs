using System.Net.Http.Json;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Konsole.Actors.Accounts;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Actors.Hosting;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using Konsole.Actors.Routing;
using Konsole.Testing;
using static Konsole.Actors.Routing.RoleRouterProtocol;

namespace Konsole.Bench;

/// <summary>One way to run a turn and wait for its result.</summary>
public interface ITurnPath : IAsyncDisposable
{
    string Name { get; }

    /// <summary>Runs one turn to its result; returns how many stdout lines (events) it brought.</summary>
    Task<int> TurnAsync(string text);

    /// <summary>Goes on in a new, empty conversation (one untimed turn), so what warming up said does not lengthen the measured turns.</summary>
    Task StartOverAsync();

    /// <summary>The last turn's <c>result</c> line (null: a path with no CLI), read after the clock has stopped.</summary>
    string? LastResult { get; }
}

/// <summary>Each answer checked: a turn whose result is not its prompt's echo (an error, another prompt's) does not count.</summary>
public static class Answers
{
    /// <summary>Throws unless <paramref name="result"/> is a successful result line answering <c>echo: </c><paramref name="echoed"/>.</summary>
    public static void Check(string where, string echoed, string? result)
    {
        if (Read(result) is not (false, var answer) || answer != $"echo: {echoed}")
            throw new InvalidOperationException($"{where} \"{echoed}\": unexpected result {(result is null ? "(none)" : result[..Math.Min(result.Length, 600)])}");
    }

    /// <summary>The result line says its turn ended without an error.</summary>
    public static bool Succeeded(string? result) => Read(result) is (false, _);

    /// <summary>A result line's <c>is_error</c> and <c>result</c> text; null when it is none (not JSON, or no <c>is_error</c>).</summary>
    private static (bool IsError, string? Answer)? Read(string? result)
    {
        if (result is null)
            return null;
        try
        {
            using var json = JsonDocument.Parse(result);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("is_error", out var isError)
                || isError.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return null;
            return (isError.GetBoolean(),
                root.TryGetProperty("result", out var text) && text.ValueKind == JsonValueKind.String ? text.GetString() : null);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// The baseline: one CLI process driven through CliWrap directly (the same <see cref="CliProcess"/> the actors use:
/// stdin from a channel, stdout split into lines and parsed) with no actor in between.
/// </summary>
public sealed class RawPipe : ITurnPath
{
    private readonly CliProcess _process;
    private TaskCompletionSource<int>? _turn;
    private int _lines;
    private byte[]? _result;

    private RawPipe(ProcessLaunch launch)
    {
        _process = CliProcess.Start(launch, OnLine, _ => { }, _ => { });
    }

    public string Name => "raw pipe";

    public static async Task<RawPipe> StartAsync(ProcessLaunch launch)
    {
        var pipe = new RawPipe(launch);
        pipe._turn = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        pipe._process.TryWrite(StreamJsonWriter.ControlRequest("init", "initialize"));
        await pipe._turn.Task.WaitAsync(TimeSpan.FromSeconds(60)); // the control_response
        return pipe;
    }

    public Task<int> TurnAsync(string text)
    {
        _lines = 0;
        _turn = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        _process.TryWrite(StreamJsonWriter.UserMessage(text, Prompt.NewId()));
        return _turn.Task;
    }

    public Task StartOverAsync() => TurnAsync("/clear");

    public string? LastResult => _result is null ? null : System.Text.Encoding.UTF8.GetString(_result);

    public async ValueTask DisposeAsync() => await _process.StopAsync(TimeSpan.FromSeconds(2));

    private void OnLine(ReadOnlyMemory<byte> line)
    {
        _lines++;
        if (StreamJsonParser.Parse(line) is not { } frame || !(frame.IsResult || frame.Type == "control_response"))
            return;
        if (frame.IsResult)
            _result = line.ToArray(); // decoded once the clock has stopped
        _turn?.TrySetResult(_lines);
    }
}

/// <summary>The actor path: RoleRouter → AccountActor → HotProcessActor, in an actor system of its own.</summary>
public sealed class ActorPath : ITurnPath
{
    private readonly ActorSystem _system;
    private readonly IActorRef _router;
    private readonly IActorRef _caller;
    private ConversationRef? _conversation;
    private int _sessions = 1;
    private CliFrame? _result;

    private ActorPath(ActorSystem system, IActorRef router)
    {
        _system = system;
        _router = router;
        _caller = system.ActorOf(Props.Create(() => new Caller()), "caller");
    }

    public string Name => "actor path";

    public IActorRef Router => _router;

    public ActorSystem System => _system;

    public static async Task<ActorPath> StartAsync(KonsoleSettings settings)
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING\n" + (Environment.GetEnvironmentVariable("BENCH_AKKA") ?? ""))
            .WithFallback(PersistenceSetup.InMemory).WithFallback(KonsoleConfig.Defaults);
        var system = ActorSystem.Create("bench", config);
        var router = KonsoleActors.StartRouter(system, settings);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!(await router.Ask<AccountsView>(GetAccounts.Instance, TimeSpan.FromSeconds(10))).Accounts.All(a => a.Status.Warm))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("the accounts never became warm");
            await Task.Delay(50);
        }
        return new ActorPath(system, router);
    }

    public Task<int> TurnAsync(string text) => TurnAsync(text, Role.Dashboard, $"bench-{_sessions}", keepConversation: true);

    public Task StartOverAsync()
    {
        _sessions++;
        _conversation = null;
        return TurnAsync("a new conversation");
    }

    public string? LastResult => _result?.Raw;

    public async Task<int> TurnAsync(string text, Role role, string session, bool keepConversation)
    {
        var done = new TaskCompletionSource<(int Lines, ConversationRef? Conversation, CliFrame Result)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var prompt = new Prompt(Prompt.NewId(), session, text, keepConversation ? _conversation : null, _caller);
        _caller.Tell(new Caller.Expect(prompt.PromptId, done));
        _router.Tell(new RoutePrompt(role, prompt));
        var (lines, conversation, result) = await done.Task;
        if (keepConversation)
            _conversation = conversation;
        _result = result;
        return lines;
    }

    public async ValueTask DisposeAsync() => await _system.Terminate();

    /// <summary>Completes each prompt's task when its turn ends, counting the lines it brought.</summary>
    private sealed class Caller : ReceiveActor
    {
        private readonly Dictionary<string, (TaskCompletionSource<(int, ConversationRef?, CliFrame)> Done, int Lines)> _waiting = [];

        public Caller()
        {
            Receive<Expect>(m => _waiting[m.PromptId] = (m.Done, 0));
            Receive<TurnOutput>(m =>
            {
                if (_waiting.TryGetValue(m.PromptId, out var w))
                    _waiting[m.PromptId] = (w.Done, w.Lines + 1);
            });
            Receive<TurnCompleted>(m =>
            {
                if (_waiting.Remove(m.PromptId, out var w))
                    w.Done.TrySetResult((w.Lines, m.Conversation, m.Result));
            });
            Receive<TurnFailed>(m =>
            {
                if (_waiting.Remove(m.PromptId, out var w))
                    w.Done.TrySetException(new InvalidOperationException($"{m.Code}: {m.Message}"));
            });
            Receive<PromptQueued>(_ => { });
            Receive<DispatchRequested>(m => Sender.Tell(new DispatchConfirmed(m.PromptId)));
        }

        public sealed record Expect(string PromptId, TaskCompletionSource<(int, ConversationRef?, CliFrame)> Done);
    }
}

/// <summary>The whole product: HTTP + SSE through the gateway, sessions journaled in SQLite, to the same kind of process.</summary>
public sealed class GatewayPath(GatewayHost host, string name) : ITurnPath
{
    private int _sessions = 1;
    private SseEvent? _result;

    public string Name => name;

    public GatewayHost Host => host;

    public string? LastResult => _result?.Data;

    public static async Task<GatewayPath> StartAsync(string hocon, string name = "HTTP+SSE gateway")
    {
        var host = await GatewayHost.StartAsync(hocon);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!(await host.Client.GetAsync("/readyz")).IsSuccessStatusCode)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("the gateway never became ready");
            await Task.Delay(50);
        }
        return new GatewayPath(host, name);
    }

    public Task<int> TurnAsync(string text) => TurnAsync($"/sessions/bench-{_sessions}/hot-prompt", text);

    public Task StartOverAsync()
    {
        _sessions++;
        return TurnAsync("a new conversation");
    }

    public async Task<int> TurnAsync(string path, string text)
    {
        var events = await EventsAsync(path, text, TimeSpan.FromSeconds(120));
        _result = events[^1];
        return events.Count;
    }

    /// <summary>One prompt's SSE events, the last its <c>result</c>; throws when it is refused or ends otherwise.</summary>
    public async Task<IReadOnlyList<SseEvent>> EventsAsync(string path, string text, TimeSpan timeout)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(new { prompt = text }) };
        await using var stream = await SseStream.OpenAsync(host.Client, request, timeout);
        if (!stream.Response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{path}: {(int)stream.Response.StatusCode} {await stream.Response.Content.ReadAsStringAsync()}");
        var events = await stream.ReadToEndAsync(timeout);
        return events is [.., { Event: "result" }] ? events : throw new InvalidOperationException($"{path} \"{text}\": the stream ended with {events.LastOrDefault()}");
    }

    public async ValueTask DisposeAsync() => await host.DisposeAsync();
}

/// <summary>How every path here starts its CLI: the same launch as an account's full process.</summary>
public static class Launches
{
    public static ProcessLaunch Full(KonsoleSettings settings) => CliLaunch.For(settings, settings.Accounts[0], ProcessMode.Full);
}

/// <summary>Not a turn: one <c>GET /healthz</c> on a gateway, the HTTP round trip under every turn that goes over HTTP.</summary>
public sealed class HttpFloor(HttpClient client) : ITurnPath
{
    public string Name => "HTTP floor: GET /healthz";

    public async Task<int> TurnAsync(string text)
    {
        using var response = await client.GetAsync("/healthz");
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsStringAsync();
        return 1;
    }

    public Task StartOverAsync() => Task.CompletedTask;

    public string? LastResult => null;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
