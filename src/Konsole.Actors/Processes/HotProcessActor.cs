using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Event;
using Konsole.Actors.Prompts;
using Konsole.Actors.Protocol;
using static Konsole.Actors.Processes.HotProcessProtocol;

namespace Konsole.Actors.Processes;

/// <summary>
/// One CLI process holding one conversation, kept warm between turns. Sends one prompt at a time
/// (the CLI would merge prompts sent mid-turn into one turn), streams every stdout line of the turn to
/// the prompt's caller, and ends the turn at its <c>result</c>. Chat processes are emptied with
/// <c>/clear</c> after each turn, so every chat turn starts from an empty conversation without paying
/// for the clear itself; a process whose <c>/clear</c> fails (or stays silent for <c>start-timeout</c>) is killed rather than run
/// a turn on the conversation it kept. The process dies with the actor; an unexpected exit is reported to the parent, naming
/// the turn it had sent, if any: a prompt still waiting for a <c>/clear</c> or <c>set_model</c> never reached the CLI.
/// A watchdog guards each turn: no output for <c>turn-timeout</c> and the turn is interrupted; no result within
/// <c>interrupt-timeout</c> after that and the process is killed. Either way the caller gets <c>turn_timeout</c>, unless
/// a success result crossed the interrupt: that is the turn's answer.
/// A prompt for another model than the process runs is preceded by a <c>set_model</c> (a model the CLI refuses ends the
/// prompt with <c>model_unavailable</c>; the process stays on the model it had).
/// </summary>
public sealed class HotProcessActor : ReceiveActor, IWithTimers
{
    private const string InitializeRequestId = "konsole_initialize";
    private const int StderrTailLines = 20;

    private readonly HotProcessSpec _spec;
    private readonly string _launchModel; // what set_model calls the model it started on
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Queue<string> _stderrTail = new();
    private readonly IReadOnlyList<string> _secrets; // the credentials in the CLI's environment, masked in whatever it says
    private readonly int _longestSecretBytes;
    private Task<CliProcess>? _starting;
    private readonly CancellationTokenSource _startCancel = new(); // a start still queued when the actor stops is not made
    private CliProcess? _process;
    private bool _ready;
    private string? _sessionId;
    private int _controlRequests;
    private long _skippedLines;

    // The turn this process serves: set from RunTurn until its result. Not yet sent while a /clear runs;
    // started once the CLI took it from its queue.
    private Prompt? _turn;
    private bool _turnSent;
    private bool _turnStarted;
    private bool _timedOut; // the watchdog interrupted the turn
    private bool _rejectedInTurn; // the CLI reported a rejected rate limit during the turn
    private long _lastOutputMs; // Environment.TickCount64 at the turn's latest output
    private bool _watchdogArmed;
    private string? _clearId;
    private string? _model; // the model a set_model put it on; null: the one it started on
    private (string RequestId, string? Model, string PromptId)? _modelChange; // a set_model waiting for its answer, and for whom

    public HotProcessActor(HotProcessSpec spec)
    {
        _spec = spec;
        _launchModel = LaunchModel(spec.Launch.Arguments);
        _secrets = SecretRedactor.SecretsInHostEnvironment(spec.Launch.Environment);
        _longestSecretBytes = _secrets.Select(Encoding.UTF8.GetByteCount).DefaultIfEmpty().Max();
        Receive<Started>(m => m.Start == _starting, m => OnStarted(m.Process));
        Receive<Started>(m => CliProcessTracker.Get(Context.System).Stop(m.Process)); // an earlier incarnation's start: not this actor's
        Receive<StartFailed>(m => m.Start == _starting, m => Fail(null, $"could not start '{_spec.Launch.FileName}': {m.Error.Message}"));
        Receive<StartFailed>(_ => { });
        Receive<StdoutRead>(m =>
        {
            FedWatchdog();
            foreach (var line in m.Lines)
                OnLine(line);
        });
        Receive<TurnSilent>(_ => OnTurnSilent());
        Receive<InterruptUnanswered>(_ =>
        {
            if (_timedOut)
                KillForTimeout($"no output for {Seconds(_spec.Claude.TurnTimeout)}, and no result {Seconds(_spec.Claude.InterruptTimeout)} after an interrupt");
            else
                Kill(TurnErrorCodes.Interrupted, $"no result {Seconds(_spec.Claude.InterruptTimeout)} after the interrupt (konsole.claude.interrupt-timeout)");
        });
        Receive<Stderr>(m => OnStderr(m.Line));
        Receive<RunTurn>(OnRunTurn);
        Receive<InterruptTurn>(m => OnInterrupt(m.PromptId));
        Receive<Exited>(m => Fail(m.ExitCode, $"the CLI exited with code {m.ExitCode}"));
        Receive<ReadingFailed>(m =>
        {
            _process?.Kill(); // nobody reads its output any more: it must not go on alone
            Fail(null, $"reading the CLI's output failed ({m.Error.GetType().Name}: {m.Error.Message}); the process was killed");
        });
        Receive<StartTimedOut>(_ =>
        {
            if (_process is null)
            {
                // Starts wait for the CLIs booting before them (as many at a time as the machine has cores).
                Fail(null, $"the CLI was not started within {_spec.Claude.StartTimeout.TotalSeconds:0.#}s: the CLIs starting before it took that long");
                return;
            }
            _process.Kill();
            Fail(null, $"the CLI did not answer initialize within {_spec.Claude.StartTimeout.TotalSeconds:0.#}s");
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(HotProcessSpec spec) => Akka.Actor.Props.Create(() => new HotProcessActor(spec));

    private string Name => $"{_spec.AccountId}/{_spec.Mode.ToString().ToLowerInvariant()}";

    protected override void PreStart()
    {
        var self = Self;
        var launch = _spec.ResumeSessionId is { } resume
            ? _spec.Launch with { Arguments = [.. _spec.Launch.Arguments, "--resume", resume] }
            : _spec.Launch;
        // Everything one read of stdout brought goes to the actor as one message: under load a read holds many lines, and
        // one hand-off instead of one per line is what keeps up. The list is only touched by the stdout reader.
        var lines = new List<object>();
        string? lastSessionId = null; // also only touched by the stdout reader
        var tracker = CliProcessTracker.Get(Context.System);
        _sessionId = _spec.ResumeSessionId;
        // A start (a fork and an exec, a pid record on disk) is not made on the actor's thread: the actor answers meanwhile.
        var starting = tracker.StartAsync(() => CliProcess.Start(
            launch,
            line =>
            {
                var parsed = ParseLine(line, lastSessionId);
                if (parsed is CliFrame { SessionId: { } id })
                    lastSessionId = id;
                lines.Add(parsed);
            },
            dropped => lines.Add(dropped), // not the method group: that would keep the first list, and lines is renewed per read
            line => self.Tell(new Stderr(line)),
            onStdoutReadEnd: () =>
            {
                if (lines.Count == 0)
                    return;
                self.Tell(new StdoutRead(lines));
                lines = new List<object>(lines.Count); // the next read likely brings as many: no regrowing
            }), _spec.Claude.StopGrace, _spec.Claude.StartTimeout, _startCancel.Token);
        _starting = starting;
        starting.PipeTo(self, success: process => new Started(starting, process), failure: e => new StartFailed(starting, e));
        Timers.StartSingleTimer(nameof(StartTimedOut), StartTimedOut.Instance, _spec.Claude.StartTimeout);
    }

    private void OnStarted(CliProcess process)
    {
        _process = process;
        Timers.StartSingleTimer(nameof(StartTimedOut), StartTimedOut.Instance, _spec.Claude.StartTimeout); // its boot, from now
        _process.Exited.PipeTo(Self, success: code => new Exited(code), failure: e => new ReadingFailed(e));
        _log.Info("{0}: started {1} (pid {2}){3}", Name, _spec.Launch.FileName, _process.ProcessId,
            _spec.ResumeSessionId is { } id ? $", resuming {id}" : "");
        Write(StreamJsonWriter.ControlRequest(InitializeRequestId, "initialize"));
    }

    protected override void PostStop()
    {
        var tracker = CliProcessTracker.Get(Context.System);
        _startCancel.Cancel();
        if (_process is { HasExited: false })
        {
            // Nobody hears the running turn's end now (a closed worker session, a failed account, a fault): it is interrupted
            // before stdin closes, so the CLI ends now instead of after the turn's work (and its tools) ran on.
            if (_turn is not null && _turnSent)
                WriteInterrupt();
            tracker.Stop(_process);
        }
        else if (_process is null)
            _starting?.ContinueWith(t => tracker.Stop(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default); // stopped while it started
    }

    private object ParseLine(ReadOnlyMemory<byte> line, string? sessionId) =>
        (object?)StreamJsonParser.Parse(line, sessionId) ?? new NonJsonLine(line);

    private void OnLine(object line)
    {
        switch (line)
        {
            case CliFrame frame:
                OnFrame(frame);
                break;
            case NonJsonLine junk:
                // A flood of junk must not flood the log: the first few are shown, then every thousandth.
                if (++_skippedLines <= 5 || _skippedLines % 1000 == 0)
                    _log.Warning("{0}: skipped a stdout line that is not a JSON object ({1} so far): {2}", Name, _skippedLines, Preview(junk.Line));
                break;
            case DroppedLine dropped:
                _log.Error("{0}: dropped a stdout line ({1}) of {2:N0} bytes (konsole.claude.max-line-bytes = {3:N0})", Name,
                    dropped.Type ?? "no type read", dropped.Bytes, _spec.Launch.MaxLineBytes);
                if (dropped.Type == "result")
                    OnDroppedResult(dropped);
                else if (_clearId is null && _turn is not null && _turnSent)
                    _turn.ReplyTo.Tell(new TurnLineDropped(_turn.PromptId, dropped.Type, dropped.Bytes, _spec.Launch.MaxLineBytes));
                break;
        }
    }

    /// <summary>
    /// The CLI ended a turn, and its result line was too long to keep. Without this the turn would wait for a result until the
    /// watchdog: it ends as a result would end it, with an error for the result itself.
    /// </summary>
    private void OnDroppedResult(DroppedLine result)
    {
        if (_clearId is not null || _turn is null || !_turnSent || AnswersAnother(result.UserMessageUuid))
            return;
        _turn.ReplyTo.Tell(_timedOut
            ? TimedOut(_turn.PromptId)
            : new TurnFailed(_turn.PromptId, TurnErrorCodes.ResultTooLarge,
                $"the turn's result, {result.Bytes:N0} bytes, was over konsole.claude.max-line-bytes ({_spec.Launch.MaxLineBytes:N0}) " +
                "and was dropped: the turn ended on the CLI, and its conversation goes on", Conversation: ConversationAfterTurn()));
        EndTurn(_sessionId, isError: true);
    }

    /// <summary>A result that names another user message than the running turn's (a late one of an earlier prompt): not this turn's end.</summary>
    private bool AnswersAnother(string? userMessageUuid)
    {
        if (userMessageUuid is null || userMessageUuid == _turn!.PromptId)
            return false;
        _log.Warning("{0}: a result for user message {1} arrived during prompt {2}; the turn goes on", Name, userMessageUuid, _turn.PromptId);
        return true;
    }

    private TurnFailed TimedOut(string promptId) => new(promptId, TurnErrorCodes.TurnTimeout,
        $"no output for {Seconds(_spec.Claude.TurnTimeout)} (konsole.claude.turn-timeout): the turn was interrupted");

    /// <summary>The line's start, credentials masked (read past the cut by the longest, so one across it is masked whole, not shown in part).</summary>
    private string Preview(ReadOnlyMemory<byte> line)
    {
        var head = Encoding.UTF8.GetString(line.Span[..Math.Min(line.Length, 200 + _longestSecretBytes)]);
        // Masked at their own length first: masked shorter, the cut would take in more of the line, part of another one with it.
        foreach (var secret in _secrets)
            head = head.Replace(secret, new string('\0', secret.Length), StringComparison.Ordinal);
        var text = Regex.Replace(head.Length > 200 ? head[..200] : head, "\0+", "***");
        return SecretRedactor.Redact(text) + (line.Length > 200 ? $"... ({line.Length:N0} bytes)" : "");
    }

    private void OnRunTurn(RunTurn run)
    {
        if (!_ready || _turn is not null)
        {
            // The account never does this; if it ever does, the prompt must still end.
            run.Prompt.ReplyTo.Tell(new TurnFailed(run.Prompt.PromptId, TurnErrorCodes.AccountUnavailable,
                $"{Name} is not ready for a prompt"));
            return;
        }
        _turn = run.Prompt;
        _turnSent = false;
        if (_clearId is null)
            FedWatchdog(); // a /clear still running is watched since it started: the prompt does not restart its clock
        if (run.ClearFirst)
            StartClear();
        Prepare();
    }

    /// <summary>Sends the turn once nothing runs before it: a <c>/clear</c>, then a <c>set_model</c> when it needs another model.</summary>
    private void Prepare()
    {
        if (_turn is null || _turnSent || _clearId is not null || _modelChange is not null)
            return;
        if (_turn.Model != _model)
        {
            var requestId = $"konsole_model_{++_controlRequests}";
            _modelChange = (requestId, _turn.Model, _turn.PromptId);
            Write(StreamJsonWriter.SetModel(requestId, _turn.Model ?? _launchModel));
            return;
        }
        SendTurn();
    }

    /// <summary>The model named by the last <c>--model</c> of the command line; <c>default</c> (the CLI's) without one.</summary>
    private static string LaunchModel(IReadOnlyList<string> arguments)
    {
        for (var i = arguments.Count - 1; i >= 0; i--)
        {
            if (arguments[i] == "--model" && i + 1 < arguments.Count)
                return arguments[i + 1];
            if (arguments[i].StartsWith("--model=", StringComparison.Ordinal))
                return arguments[i]["--model=".Length..];
        }
        return "default";
    }

    private void SendTurn()
    {
        _turnSent = true;
        Write(StreamJsonWriter.UserMessage(_turn!.Text, _turn.PromptId));
    }

    private void StartClear()
    {
        if (_clearId is not null)
            return; // one is running; the turn is sent when it ends
        _clearId = Prompt.NewId();
        FedWatchdog();
        Write(StreamJsonWriter.UserMessage("/clear", _clearId));
    }

    private void OnInterrupt(string promptId)
    {
        if (_turn?.PromptId != promptId)
            return;
        if (!_turnSent)
        {
            // Still waiting for a /clear or set_model: the prompt never reached the CLI.
            _turn.ReplyTo.Tell(new TurnFailed(promptId, TurnErrorCodes.Interrupted, "interrupted before it started"));
            EndTurn(null, isError: true);
            return;
        }
        SendInterrupt();
    }

    /// <summary>
    /// Asks the CLI to interrupt the turn. Without a result within interrupt-timeout of the first ask (a caller's or the
    /// watchdog's) the CLI is killed: one that does not answer must not hold the turn, and every prompt behind it.
    /// </summary>
    private void SendInterrupt()
    {
        WriteInterrupt();
        if (!Timers.IsTimerActive(nameof(InterruptUnanswered)))
            Timers.StartSingleTimer(nameof(InterruptUnanswered), InterruptUnanswered.Instance, _spec.Claude.InterruptTimeout);
    }

    private void WriteInterrupt() => Write(StreamJsonWriter.Interrupt($"konsole_interrupt_{++_controlRequests}"));

    private void OnFrame(CliFrame frame)
    {
        switch (frame.Type)
        {
            case "control_response":
                OnControlResponse(frame);
                return;
            case "rate_limit_event" when frame.RateLimit is not null:
                _rejectedInTurn |= frame.RateLimit.Status == "rejected";
                Context.Parent.Tell(new RateLimitObserved(frame.RateLimit));
                break;
        }
        if (frame.IsInit && frame.SessionId is not null)
            _sessionId = frame.SessionId;

        if (_clearId is not null)
        {
            if (frame.IsResult)
                OnClearFinished(frame);
            return; // the clear's own frames are not part of anyone's turn
        }
        if (_turn is null || !_turnSent)
        {
            _log.Debug("{0}: {1} frame between turns", Name, frame.Type ?? "untyped");
            return;
        }

        if (frame.Lifecycle is { CommandUuid: { } command } && command != _turn.PromptId)
        {
            // The CLI reports on an earlier command late (an interrupted one's "cancelled" once it read the next prompt).
            _log.Debug("{0}: {1} lifecycle of command {2} during prompt {3}", Name, frame.Lifecycle.State, command, _turn.PromptId);
            return;
        }
        if (frame.Lifecycle is { } lifecycle)
        {
            if (lifecycle.State == "started")
                _turnStarted = true;
            else if (lifecycle.State == "cancelled" && !_turnStarted)
            {
                // An interrupt (the watchdog's too) took it from the CLI's queue before it ran: no result will come.
                _turn.ReplyTo.Tell(_timedOut ? TimedOut(_turn.PromptId)
                    : new TurnFailed(_turn.PromptId, TurnErrorCodes.Interrupted, "interrupted before it started"));
                EndTurn(_sessionId, isError: true);
                return;
            }
        }
        if (frame.IsInit)
            _turnStarted = true;

        if (frame.IsResult && AnswersAnother(frame.UserMessageUuid))
            return; // nor a line of this turn, as a lifecycle of another command is not
        _turn.ReplyTo.Tell(new TurnOutput(_turn.PromptId, frame));
        if (!frame.IsResult)
            return;
        // An API-key account's CLI reports no rate_limit_event: its 429 is the only sign. Held a minute (its limits are per minute).
        if (!_rejectedInTurn && frame.ApiErrorStatus == 429)
            Context.Parent.Tell(new RateLimitObserved(new RateLimitInfo("rejected", DateTimeOffset.UtcNow.AddMinutes(1), null, null)));
        // A success that crossed the watchdog's interrupt (the CLI had finished before it read it) is the turn's answer.
        if (_timedOut && frame.IsError)
        {
            _turn.ReplyTo.Tell(TimedOut(_turn.PromptId));
            EndTurn(_sessionId, isError: true);
            return;
        }
        if (frame.SessionId is not null)
            _sessionId = frame.SessionId;
        _turn.ReplyTo.Tell(new TurnCompleted(_turn.PromptId, frame, ConversationAfterTurn(), _spec.AccountId));
        EndTurn(_sessionId, frame.IsError);
    }

    /// <summary>Where the turn's caller continues its conversation (chat turns keep none).</summary>
    private ConversationRef? ConversationAfterTurn() => _spec.Mode != ProcessMode.Chat && _sessionId is not null
        ? new ConversationRef(_sessionId, _spec.AccountId, _spec.ConfigDir)
        : null;

    private void EndTurn(string? sessionId, bool isError)
    {
        var promptId = _turn!.PromptId;
        _turn = null;
        _turnSent = false;
        _turnStarted = false;
        _timedOut = false;
        _rejectedInTurn = false;
        if (_clearId is null) // one still running (the prompt waiting on it was interrupted) stays watched
        {
            _watchdogArmed = false;
            Timers.Cancel(nameof(TurnSilent));
        }
        Timers.Cancel(nameof(InterruptUnanswered));
        if (_spec.Mode == ProcessMode.Chat)
            StartClear();
        Context.Parent.Tell(new TurnFinished(promptId, sessionId, isError));
    }

    private void OnClearFinished(CliFrame result)
    {
        if (result.UserMessageUuid is { } answered && answered != _clearId)
        {
            _log.Warning("{0}: a result for user message {1} arrived during a /clear; the clear goes on", Name, answered);
            return;
        }
        _clearId = null;
        if (!result.IsError)
        {
            Prepare();
            return;
        }
        // The conversation may be as it was: a chat turn, or a new conversation, must not run on it. An empty one takes a new process.
        _log.Warning("{0}: /clear ended with an error: {1}", Name, Shown(result.Raw));
        _process?.Kill();
        Fail(null, "killed: the CLI answered /clear with an error, so its conversation could not be emptied");
    }

    private void OnControlResponse(CliFrame frame)
    {
        var response = frame.ControlResponse;
        if (response?.RequestId == InitializeRequestId)
        {
            if (response.Subtype != "success")
                _log.Warning("{0}: initialize answered {1}: {2}", Name, response.Subtype, Shown(response.Error));
            Timers.Cancel(nameof(StartTimedOut));
            _ready = true;
            Context.Parent.Tell(new ProcessReady(_process!.ProcessId));
        }
        else if (_modelChange is { } change && response?.RequestId == change.RequestId)
        {
            _modelChange = null;
            if (response.Subtype == "success")
                _model = change.Model;
            else if (_turn is { } turn && !_turnSent && turn.PromptId == change.PromptId)
            {
                ModelRefused(change.Model ?? _launchModel, Shown(response.Error));
                return;
            }
            else
                _log.Warning("{0}: the CLI refused model {1} for a prompt that ended meanwhile: {2}", Name, change.Model ?? _launchModel, Shown(response.Error));
            Prepare(); // the turn waiting now (another prompt's, after an interrupt) may want another model
        }
        else if (response?.Subtype != "success")
            _log.Warning("{0}: control request {1} failed: {2}", Name, response?.RequestId, Shown(response?.Error));
    }

    private void ModelRefused(string model, string? error)
    {
        _log.Warning("{0}: the CLI refused model {1}: {2}", Name, model, error);
        _turn!.ReplyTo.Tell(new TurnFailed(_turn.PromptId, TurnErrorCodes.ModelUnavailable,
            $"the CLI refused model '{model}': {error ?? "no reason given"}"));
        EndTurn(null, isError: true); // it never reached the CLI: the conversation is not this prompt's
    }

    private void OnStderr(string line)
    {
        line = SecretRedactor.Redact(line, _secrets);
        _log.Debug("{0} stderr: {1}", Name, line);
        _stderrTail.Enqueue(Truncate(line)); // the tail goes into a crash's error message
        if (_stderrTail.Count > StderrTailLines)
            _stderrTail.Dequeue();
    }

    private void Write(byte[] line)
    {
        if (_process is null || !_process.TryWrite(line))
            _log.Warning("{0}: stdin is closed; a line was not written", Name);
    }

    /// <summary>
    /// Feeds the watchdog: a turn, or a <c>/clear</c> (with or without a turn waiting on it), that prints nothing for
    /// <see cref="QuietLimit"/> is silent. Output only notes the time; the one timer, when it fires, looks at how long it has really been quiet.
    /// </summary>
    private void FedWatchdog()
    {
        if ((_turn is null && _clearId is null) || _timedOut)
            return;
        _lastOutputMs = Environment.TickCount64;
        if (!_watchdogArmed)
            ArmWatchdog(QuietLimit.Limit);
    }

    /// <summary>
    /// How long it may print nothing: a turn sent to the CLI, turn-timeout (the model may think, a tool may run); a <c>/clear</c>
    /// or <c>set_model</c> before it, which the CLI answers itself (running the session's hooks, as when it starts), start-timeout
    /// at most, so a silent one does not hold its process, and the prompts queued on it, for a whole turn-timeout.
    /// </summary>
    private (TimeSpan Limit, string Key) QuietLimit => (_turn is not null && _turnSent) || _spec.Claude.TurnTimeout <= _spec.Claude.StartTimeout
        ? (_spec.Claude.TurnTimeout, "konsole.claude.turn-timeout")
        : (_spec.Claude.StartTimeout, "konsole.claude.start-timeout");

    private void ArmWatchdog(TimeSpan after)
    {
        _watchdogArmed = true;
        Timers.StartSingleTimer(nameof(TurnSilent), TurnSilent.Instance, after);
    }

    private void OnTurnSilent()
    {
        _watchdogArmed = false;
        if (_turn is null && _clearId is null)
            return;
        var quiet = TimeSpan.FromMilliseconds(Environment.TickCount64 - _lastOutputMs);
        var (limit, key) = QuietLimit;
        if (quiet < limit)
        {
            ArmWatchdog(limit - quiet);
            return;
        }
        if (_turn is null || !_turnSent)
        {
            // Nothing to interrupt: a prompt waiting on it never reached the CLI, and its account runs it on the next process.
            _process?.Kill();
            Fail(null, $"killed by the watchdog: the {(_clearId is not null ? "/clear" : "set_model")} printed nothing for {Seconds(limit)} ({key})");
            return;
        }
        _log.Warning("{0}: prompt {1} printed nothing for {2} (konsole.claude.turn-timeout): interrupting it", Name, _turn.PromptId,
            Seconds(_spec.Claude.TurnTimeout));
        _timedOut = true;
        SendInterrupt();
    }

    private void KillForTimeout(string reason) => Kill(TurnErrorCodes.TurnTimeout, reason);

    /// <summary>Ends the turn with <paramref name="code"/> and kills the CLI (its account starts another).</summary>
    private void Kill(string code, string reason)
    {
        if (_turn is not { } turn)
            return;
        turn.ReplyTo.Tell(new TurnFailed(turn.PromptId, code, $"{reason}: the CLI process was killed"));
        _process?.Kill();
        Fail(null, code == TurnErrorCodes.TurnTimeout ? $"killed by the watchdog: {reason}" : $"killed: {reason}", turnReported: turn.PromptId);
    }

    private void Fail(int? exitCode, string reason, string? turnReported = null)
    {
        var stderr = string.Join(" | ", _stderrTail.Where(l => l.Length > 0).TakeLast(5));
        var message = stderr.Length > 0 ? $"{reason}; stderr: {stderr}" : reason;
        _log.Warning("{0}: {1}", Name, message);
        Context.Parent.Tell(new ProcessExited(exitCode, _sessionId, message, turnReported, _turnSent ? _turn?.PromptId : null));
        Context.Stop(Self);
    }

    private static string Seconds(TimeSpan span) => $"{span.TotalSeconds:0.###}s";

    private static string Truncate(string text) => text.Length <= 300 ? text : text[..300] + "...";

    /// <summary>What the CLI said, fit for a log line or an error message: shortened, any credential in it masked.</summary>
    [return: NotNullIfNotNull(nameof(text))]
    private string? Shown(string? text) => text is null ? null : Truncate(SecretRedactor.Redact(text, _secrets));

    // Output of a process can still arrive after its actor stopped: not worth a dead-letter warning.
    /// <param name="Lines">In order: a <see cref="CliFrame"/>, <see cref="NonJsonLine"/> or <see cref="DroppedLine"/> each.</param>
    private sealed record Started(Task Start, CliProcess Process) : IDeadLetterSuppression;

    private sealed record StartFailed(Task Start, Exception Error) : IDeadLetterSuppression;

    private sealed record StdoutRead(IReadOnlyList<object> Lines) : IDeadLetterSuppression;

    /// <summary>Its preview is made only if it is logged (a flood of junk is not).</summary>
    private sealed record NonJsonLine(ReadOnlyMemory<byte> Line);

    private sealed record Stderr(string Line) : IDeadLetterSuppression;

    private sealed record Exited(int ExitCode) : IDeadLetterSuppression;

    private sealed record ReadingFailed(Exception Error) : IDeadLetterSuppression;

    private sealed record StartTimedOut
    {
        public static readonly StartTimedOut Instance = new();
    }

    private sealed record TurnSilent
    {
        public static readonly TurnSilent Instance = new();
    }

    private sealed record InterruptUnanswered
    {
        public static readonly InterruptUnanswered Instance = new();
    }
}
