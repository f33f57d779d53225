using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Konsole.Testing.FakeClaude;

/// <summary>
/// The stream-json protocol as the real CLI speaks it (see shared/protocol): user messages and control
/// requests on stdin, one JSON object per line on stdout. Like the real CLI it answers <c>initialize</c> and
/// <c>interrupt</c> at once, queues prompts that arrive mid-turn and merges them into the next turn,
/// treats <c>/clear</c> as a new conversation, exits 1 on a malformed input line, and finishes its work
/// and exits when stdin closes.
/// </summary>
public sealed class FakeCli(CliOptions options, Stream stdin, Stream stdout, TextWriter stderr)
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Channel<UserMessage> _queue = Channel.CreateUnbounded<UserMessage>();
    private readonly Lock _gate = new();
    private readonly List<Task> _quiet = []; // prompts held back by [[quiet:MS]] (the input reader's own)
    private readonly List<string> _interrupted = []; // uuids of interrupted prompts, told cancelled when the next prompt comes (under _gate)
    private string? _rateStatus; // the last rate_limit_event's status: an unchanged "allowed" is not told again
    private readonly string _configDir = Environment.GetEnvironmentVariable("CLAUDE_CONFIG_DIR")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".claude");
    private readonly string _cwd = Directory.GetCurrentDirectory();
    private volatile string? _model = options.Model; // --model, or what set_model chose
    private Transcript? _transcript;
    private CancellationTokenSource? _turn;
    private bool _lastTurnFailed;
    private string? _clearFault; // what the next /clear does instead of clearing ([[clear:...]])
    private int _results;

    private string Model => _model ?? "fake-claude";

    private Transcript Conversation => _transcript ??= Transcript.New(_configDir, _cwd);

    /// <summary>
    /// With <c>--resume</c>: loads the conversation, or says why it cannot, as the real CLI does before it exits 1 at once: on
    /// stderr, and in a <c>result</c> (<c>error_during_execution</c>, the id asked for as its session) printed before any input is read.
    /// </summary>
    public string? ResumeError()
    {
        if (options.Resume is not { } id)
            return null;
        _transcript = Transcript.Load(_configDir, _cwd, id);
        if (_transcript is not null)
            return null;
        var error = $"No conversation found with session ID: {id}";
        Emit(new
        {
            type = "result", subtype = "error_during_execution", duration_ms = 0, duration_api_ms = 0, is_error = true, num_turns = 0,
            session_id = id, total_cost_usd = 0, uuid = NewId(), errors = new[] { error },
        });
        return error;
    }

    public async Task<int> RunAsync()
    {
        var reading = Task.Run(ReadInputAsync);
        while (await _queue.Reader.WaitToReadAsync())
        {
            if (TakeNext() is not { } batch)
                continue;
            if (batch[0].IsClear)
                await ClearAsync(batch[0]);
            else
                await RunTurnAsync(batch);
            lock (_gate)
                _turn = null;
        }
        await reading;
        return _lastTurnFailed ? 1 : 0;
    }

    /// <summary>Ends the running turn (its result says <c>error_during_execution</c>); the process lives on.</summary>
    public void Interrupt(bool cancelQueued)
    {
        lock (_gate)
        {
            // The queue first: cancelling the turn can end it on this thread at once, and the next prompt would be taken.
            while (cancelQueued && _queue.Reader.TryRead(out var dropped))
            {
                if (dropped.Uuid is { } uuid)
                    Emit(Lifecycle(uuid, "cancelled"));
            }
            _turn?.Cancel();
        }
    }

    /// <summary>
    /// Takes a <c>/clear</c>, or every prompt queued up to the next one (the CLI merges them into one turn), and makes
    /// it the running turn in the same step, so an interrupt either finds it queued or finds it running.
    /// </summary>
    private List<UserMessage>? TakeNext()
    {
        lock (_gate)
        {
            if (!_queue.Reader.TryRead(out var first))
                return null;
            var batch = new List<UserMessage> { first };
            while (!first.IsClear && _queue.Reader.TryPeek(out var next) && !next.IsClear && _queue.Reader.TryRead(out next))
                batch.Add(next);
            _turn = new CancellationTokenSource();
            return batch;
        }
    }

    private async Task ReadInputAsync()
    {
        using var reader = new StreamReader(stdin, new UTF8Encoding(false));
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0)
                continue;
            JsonElement message;
            try
            {
                message = JsonDocument.Parse(line).RootElement;
            }
            catch (JsonException e)
            {
                Fatal($"Error parsing streaming input line: {e.Message}");
                return;
            }
            try
            {
                // JSON of another shape than expected (a number for a string, no text in a text block) ends the CLI as malformed input.
                var type = message.ValueKind == JsonValueKind.Object && message.TryGetProperty("type", out var t) ? t.GetString() : null;
                switch (type)
                {
                    case "user":
                        OnUser(message);
                        break;
                    case "control_request":
                        OnControlRequest(message);
                        break;
                    case "control_response" or "keep_alive":
                        break;
                    default:
                        Fatal($"Error: Expected message type 'user' or 'control', got '{type}'");
                        return;
                }
            }
            catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException)
            {
                Fatal($"Error: malformed input line: {e.Message}");
                return;
            }
        }
        await Task.WhenAll(_quiet); // a prompt still held back is taken before input ends, as the real CLI runs all it was sent
        _queue.Writer.TryComplete();
    }

    private void OnUser(JsonElement message)
    {
        if (!message.TryGetProperty("message", out var body) || body.ValueKind != JsonValueKind.Object
            || !body.TryGetProperty("role", out var role) || role.GetString() != "user")
        {
            Fatal("Error: Expected message role 'user'");
            return;
        }
        var uuid = message.TryGetProperty("uuid", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
        var user = new UserMessage(TextOf(body), uuid);
        lock (_gate)
        {
            // As the real CLI (interrupt.jsonl): an interrupted prompt is told cancelled only when the next one comes.
            foreach (var interrupted in _interrupted)
                Emit(Lifecycle(interrupted, "cancelled"));
            _interrupted.Clear();
        }
        if (Directives.Parse(user.Text).QuietMs is > 0 and var quiet)
        {
            _quiet.Add(Task.Delay(quiet).ContinueWith(_ => Take(user), TaskScheduler.Default));
            return;
        }
        Take(user);
    }

    private void Take(UserMessage user)
    {
        if (user.Uuid is not null)
            Emit(Lifecycle(user.Uuid, "queued"));
        _queue.Writer.TryWrite(user);
    }

    private void OnControlRequest(JsonElement message)
    {
        var requestId = message.GetProperty("request_id").GetString();
        var request = message.GetProperty("request");
        var subtype = request.GetProperty("subtype").GetString();
        switch (subtype)
        {
            case "initialize":
                Emit(ControlSuccess(requestId, new { commands = Array.Empty<string>(), output_style = "default", pid = Environment.ProcessId }));
                break;
            case "set_model":
                // As the CLI: "default" is its own default; a name it does not know is refused. [[delay:MS]] in the name: the
                // answer comes that much later (the stdin reader goes on meanwhile), as from a CLI busy elsewhere.
                var named = Directives.Parse(request.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "default");
                var model = named.Text;
                object answer;
                if (model.StartsWith("unknown-", StringComparison.Ordinal))
                    answer = new { type = "control_response", response = new { subtype = "error", request_id = requestId, error = $"Model '{model}' was not found" } };
                else
                {
                    _model = model == "default" ? null : model;
                    answer = ControlSuccess(requestId, new { model = Model });
                }
                if (named.DelayMs > 0)
                    _ = Task.Delay(named.DelayMs).ContinueWith(_ => Emit(answer), TaskScheduler.Default);
                else
                    Emit(answer);
                break;
            case "interrupt":
                Emit(ControlSuccess(requestId, new { still_queued = Array.Empty<string>() }));
                Interrupt(request.TryGetProperty("cancel_queued", out var c) && c.ValueKind == JsonValueKind.True);
                break;
            default:
                Emit(new { type = "control_response", response = new { subtype = "error", request_id = requestId, error = $"Unsupported control request subtype: {subtype}" } });
                break;
        }
    }

    private async Task ClearAsync(UserMessage clear)
    {
        var fault = _clearFault;
        _clearFault = null;
        if (clear.Uuid is { } started)
            Emit(Lifecycle(started, "started"));
        switch (fault)
        {
            case "crash":
                await stderr.WriteLineAsync("[fake-claude] crashing in /clear as asked");
                Environment.Exit(3);
                return;
            case "hang":
                await Task.Delay(Timeout.Infinite);
                return;
            case not null:
                Emit(Result("error_during_execution", isError: true, "/clear failed", clear, Stopwatch.StartNew(), new { local_command = "clear" }));
                return;
        }
        var previous = Conversation.SessionId;
        _transcript = Transcript.New(_configDir, _cwd);
        Emit(new { type = "conversation_reset", new_conversation_id = _transcript.SessionId, uuid = NewId(), trigger = "clear", user_message_uuid = clear.Uuid, session_id = previous });
        Emit(Init());
        Emit(Result("success", isError: false, result: "", clear, Stopwatch.StartNew(), new { local_command = "clear" }));
    }

    private async Task RunTurnAsync(List<UserMessage> batch)
    {
        var elapsed = Stopwatch.StartNew();
        CancellationToken interrupted;
        lock (_gate)
            interrupted = _turn!.Token;
        foreach (var message in batch.Where(m => m.Uuid is not null))
            Emit(Lifecycle(message.Uuid!, "started"));

        var directives = Directives.Parse(string.Join("\n", batch.Select(m => m.Text)));
        _clearFault = directives.ClearFault ?? _clearFault;
        var history = Conversation.Prompts.ToArray();
        Conversation.Append(directives.Text);
        Emit(Init());
        if (directives.FinishOnInterrupt)
        {
            await Task.Delay(Timeout.Infinite, interrupted).ContinueWith(_ => { }, TaskScheduler.Default);
            var answered = directives.Answer(history);
            EmitRaw(Assistant(answered, Model));
            Emit(Result("success", isError: false, answered, batch[0], elapsed, new { terminal_reason = "completed" }));
            return;
        }
        try
        {
            for (var i = 0; i < directives.Stderr; i++)
                await stderr.WriteLineAsync($"[fake-claude] diagnostic line {i} {new string('.', directives.StderrBytes)}");
            foreach (var name in directives.StderrEnv ?? [])
                await stderr.WriteLineAsync(Directives.EnvLine(name));
            if (directives.Hang)
                await Task.Delay(Timeout.Infinite); // deaf to interrupts too: only a kill ends it
            interrupted.ThrowIfCancellationRequested();
            await Task.Delay(directives.DelayMs, interrupted);
            for (var i = 0; i < directives.Garbage; i++)
                EmitRaw(Garbage(i));
            for (var i = 0; i < directives.Chunks; i++)
            {
                EmitRaw(Assistant($"chunk {i + 1}/{directives.Chunks} ", stamped: true));
                await Task.Delay(directives.ChunkDelayMs, interrupted);
            }
            if (directives.CrashCode is { } code)
            {
                EmitRaw(Assistant("about to crash"));
                await stderr.WriteLineAsync("[fake-claude] crashing as asked");
                Environment.Exit(code);
            }
            if (directives.RateLimitSeconds is { } resetIn)
            {
                var resetsAt = DateTimeOffset.UtcNow.AddSeconds(resetIn).ToUnixTimeSeconds();
                _rateStatus = "rejected";
                Emit(RateLimitEvent(new { status = "rejected", resetsAt, rateLimitType = "five_hour", isUsingOverage = false }));
                const string error = "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited";
                EmitRaw(Assistant(error, model: "<synthetic>"));
                Emit(Result("success", isError: true, error, batch[0], elapsed, new { api_error_status = 429, terminal_reason = "api_error" }));
                return;
            }
            if (directives.ApiError is { } status)
            {
                var error = $"API Error: {status}";
                EmitRaw(Assistant(error, model: "<synthetic>"));
                Emit(Result("success", isError: true, error, batch[0], elapsed, new { api_error_status = status, terminal_reason = "api_error" }));
                return;
            }
            interrupted.ThrowIfCancellationRequested();
            if (directives.StrayResult)
                Emit(Result("error_during_execution", isError: true, null, new UserMessage("", Guid.NewGuid().ToString()), elapsed,
                    new { terminal_reason = "aborted_streaming" })); // a late result of an earlier prompt
            var answer = directives.Answer(history);
            if (directives.Child is { } holds)
                answer += $" child {StartChild(keepsStderr: holds == "stderr")}";
            if (directives.Detached is { } how)
                answer += $" detached {StartDetached(orphan: how == "orphan")}";
            EmitRaw(Assistant(directives.Huge > 0 ? new string('x', directives.Huge) : answer, Model));
            // As the real CLI (hot-two-turns.jsonl): told on a process's first answer, then when it changes.
            if (directives.RateWarning is { } utilization)
                Emit(RateLimitEvent(new { status = "allowed_warning", resetsAt = DateTimeOffset.UtcNow.AddHours(3).ToUnixTimeSeconds(), rateLimitType = "five_hour", utilization, isUsingOverage = false }));
            else if (_rateStatus != "allowed")
                Emit(RateLimitEvent(new { status = "allowed", isUsingOverage = false }));
            _rateStatus = directives.RateWarning is null ? "allowed" : "allowed_warning";
            Emit(Result("success", isError: false, directives.HugeResult > 0 ? new string('x', directives.HugeResult) : answer, batch[0], elapsed,
                new { terminal_reason = "completed" }));
        }
        catch (OperationCanceledException)
        {
            Emit(new
            {
                type = "user",
                message = new { role = "user", content = new[] { new { type = "text", text = "[Request interrupted by user]" } } },
                parent_tool_use_id = (string?)null,
                session_id = Conversation.SessionId,
                uuid = NewId(),
            });
            Emit(Result("error_during_execution", isError: true, null, batch[0], elapsed, new { terminal_reason = "aborted_streaming" }));
            lock (_gate)
                _interrupted.AddRange(batch.Select(m => m.Uuid).OfType<string>());
        }
    }

    private object Init() => new
    {
        type = "system",
        subtype = "init",
        cwd = _cwd,
        session_id = Conversation.SessionId,
        tools = options.ToolList,
        mcp_servers = Array.Empty<string>(),
        model = Model,
        permissionMode = "default",
        apiKeySource = "none",
        claude_code_version = "fake",
        output_style = "default",
        uuid = NewId(),
    };

    /// <summary>
    /// An assistant frame, written field by field rather than through a serializer: benchmarks stream thousands of these
    /// per turn from a hundred processes at once, and the fake must not be what they measure.
    /// </summary>
    /// <param name="stamped">Carry <c>emitted_ms</c>, when it was written (Unix ms): benchmarks measure event delays with it.</param>
    private byte[] Assistant(string text, string model = "fake-claude", bool stamped = false)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + text.Length);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Json.Encoder }))
        {
            json.WriteStartObject();
            json.WriteString("type", "assistant");
            json.WriteStartObject("message");
            json.WriteString("id", $"msg_{Guid.NewGuid():N}");
            json.WriteString("type", "message");
            json.WriteString("role", "assistant");
            json.WriteString("model", model);
            json.WriteStartArray("content");
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteString("text", text);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteNull("stop_reason");
            json.WriteStartObject("usage");
            json.WriteNumber("input_tokens", 5);
            json.WriteNumber("output_tokens", 3);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteNull("parent_tool_use_id");
            json.WriteString("session_id", Conversation.SessionId);
            json.WriteString("uuid", NewId());
            if (stamped)
                json.WriteNumber("emitted_ms", (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private object RateLimitEvent(object info) => new { type = "rate_limit_event", rate_limit_info = info, uuid = NewId(), session_id = Conversation.SessionId };

    private JsonObject Result(string subtype, bool isError, string? result, UserMessage answered, Stopwatch elapsed, object extra)
    {
        _lastTurnFailed = isError;
        var frame = new JsonObject
        {
            ["type"] = "result",
            ["subtype"] = subtype,
            ["is_error"] = isError,
            ["duration_ms"] = elapsed.ElapsedMilliseconds,
            ["duration_api_ms"] = 0,
            ["num_turns"] = 1,
            ["stop_reason"] = isError ? null : "end_turn",
            ["session_id"] = Conversation.SessionId,
            ["total_cost_usd"] = 0.00008 * ++_results,
            ["usage"] = new JsonObject { ["input_tokens"] = 5, ["output_tokens"] = 3 },
            ["permission_denials"] = new JsonArray(),
            ["uuid"] = NewId(),
            ["user_message_uuid"] = answered.Uuid,
        };
        if (result is not null)
            frame["result"] = result;
        foreach (var property in JsonSerializer.SerializeToElement(extra).EnumerateObject())
            frame[property.Name] = JsonNode.Parse(property.Value.GetRawText());
        return frame;
    }

    private object Lifecycle(string commandUuid, string state) =>
        new { type = "command_lifecycle", command_uuid = commandUuid, state, uuid = NewId(), session_id = Conversation.SessionId };

    private static object ControlSuccess(string? requestId, object response) =>
        new { type = "control_response", response = new { subtype = "success", request_id = requestId, response } };

    /// <summary>A child in this process's group, on pipes of its own (a tool's output is not the CLI's stdout), but for its stderr with <paramref name="keepsStderr"/>.</summary>
    private static int StartChild(bool keepsStderr)
    {
        var child = Process.Start(new ProcessStartInfo("sleep", "600")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = !keepsStderr,
        })!;
        return child.Id;
    }

    /// <summary>
    /// A <c>sleep</c> in a session of its own (<c>setsid</c> forks no more when its caller leads no group, so the pid is the
    /// sleep's); with <paramref name="orphan"/>, started by a shell that exits at once, which leaves the sleep to init.
    /// </summary>
    private static int StartDetached(bool orphan)
    {
        // The shell setsid runs prints its pid once it leads a session of its own, then becomes the sleep (its output no longer
        // this pipe): the pid is answered only once the detach is done (setsid's own pid was answered before it had called setsid()).
        const string detachedSleep = "echo $$; exec sleep 600 </dev/null >/dev/null 2>&1";
        var start = orphan
            ? new ProcessStartInfo("sh", ["-c", $"setsid sh -c '{detachedSleep}' </dev/null 2>/dev/null &"])
            : new ProcessStartInfo("setsid", ["sh", "-c", detachedSleep]) { RedirectStandardInput = true, RedirectStandardError = true };
        start.RedirectStandardOutput = true;
        var process = Process.Start(start)!;
        var pid = int.Parse(process.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        if (orphan)
            process.WaitForExit();
        return pid;
    }

    /// <summary>Lines a supervisor must survive: each is skipped or passed through, none may throw.</summary>
    private static byte[] Garbage(int i) => (i % 13) switch
    {
        0 => "this is not json at all"u8.ToArray(),
        1 => [0xff, 0xfe, 0x80, (byte)'{', 0xc3, 0x28],
        2 => """{"type":"assistant","message":{"content":[{"type":"te"""u8.ToArray(),
        3 => "[1,2,3]"u8.ToArray(),
        4 => """{"no_type":true}"""u8.ToArray(),
        5 => """{"type":"result"} trailing garbage"""u8.ToArray(),
        6 => """{"type":"odd\r\ndata: forged\ntype"}"""u8.ToArray(), // a type that would end an SSE field early
        // JSON that .NET cannot decode into strings: a lone surrogate escape (Node prints one for a cut emoji), invalid UTF-8 inside the quotes
        8 => """{"type":"system","subtype":"odd\ud800","text":"a cut emoji \ud83d"}"""u8.ToArray(),
        9 => [.. "{\"type\":\"mystery"u8, 0xC3, 0x28, .. "\",\"text\":\""u8, 0xFF, 0xFE, .. "\"}"u8],
        10 => """{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","resetsAt":1e400,"utilization":1e400}}"""u8.ToArray(),
        11 => Encoding.UTF8.GetBytes($"{{\"type\":\"deep_frame\",\"x\":{new string('[', 200)}{new string(']', 200)}}}"),
        // An earlier command's lifecycle, as the CLI prints an interrupted one's "cancelled" late; and an error flag that is no boolean.
        12 => """{"type":"command_lifecycle","command_uuid":"11111111-1111-4111-8111-111111111111","state":"cancelled","is_error":{"odd":[1]}}"""u8.ToArray(),
        _ => """{"type":"mystery_frame","payload":{"nested":[1,{"deep":true}]}}"""u8.ToArray(),
    };

    private void Emit(object frame) => EmitRaw(JsonSerializer.SerializeToUtf8Bytes(frame, Json));

    private void EmitRaw(byte[] line)
    {
        var whole = new byte[line.Length + 1]; // one write per line, as the CLI does: readers see whole lines, not halves
        line.CopyTo(whole, 0);
        whole[^1] = (byte)'\n';
        lock (_gate)
        {
            stdout.Write(whole);
            stdout.Flush();
        }
    }

    private void Fatal(string message)
    {
        stderr.WriteLine(message);
        stderr.Flush();
        Environment.Exit(1);
    }

    private static string TextOf(JsonElement body)
    {
        if (!body.TryGetProperty("content", out var content))
            return "";
        if (content.ValueKind == JsonValueKind.String)
            return content.GetString() ?? "";
        return string.Join("\n", content.EnumerateArray()
            .Where(b => b.TryGetProperty("type", out var t) && t.GetString() == "text")
            .Select(b => b.GetProperty("text").GetString()));
    }

    private static string NewId() => Guid.NewGuid().ToString();

    private sealed record UserMessage(string Text, string? Uuid)
    {
        public bool IsClear => Text.Trim() == "/clear";
    }
}
