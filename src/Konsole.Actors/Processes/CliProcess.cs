using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using CliWrap;

namespace Konsole.Actors.Processes;

/// <summary>How to start one CLI process.</summary>
public sealed record ProcessLaunch(
    string FileName,
    IReadOnlyList<string> Arguments,
    IReadOnlyDictionary<string, string?> Environment,
    string WorkingDirectory,
    long MaxLineBytes);

/// <summary>
/// One running CLI process driven through CliWrap: stdin fed from a channel (so writes never block the
/// caller), stdout split into lines, stderr drained line by line (a stderr line over <see cref="MaxStderrLineBytes"/>
/// is reported by its size instead). It holds no actor state; the owner receives everything through the callbacks,
/// which run on I/O threads. Where <c>setsid</c> exists the process leads a process group of its own: stopping it
/// signals the whole group, and once it has exited, whatever it left running in its group (a tool's background
/// command) is killed, and what it started elsewhere (<see cref="ProcessMarks"/>: a command a tool detached) too.
/// </summary>
public sealed class CliProcess
{
    /// <summary>stderr is for the log: a longer line is not kept, however long stdout lines may be.</summary>
    public const int MaxStderrLineBytes = 64 * 1024;

    private readonly Channel<byte[]> _stdin;
    private readonly CancellationTokenSource _kill;
    private readonly Process _started; // CliWrap's, which started it: the one that can read its exit code (until CliWrap lets it go)
    // The process has exited, whatever its pipes (its output may still be on its way): its pid may be another's now.
    private readonly Task _processExited;
    private int? _exitCode; // read as its exit was seen, before its pipes closed

    private CliProcess(Channel<byte[]> stdin, CancellationTokenSource kill, CommandTask<CommandResult> task, Process started, Task exited,
        bool ownGroup, string? mark, Task firstOutput, Task stdoutClosed)
    {
        _started = started;
        _processExited = exited;
        FirstOutput = firstOutput;
        Mark = mark;
        _stdin = stdin;
        _kill = kill;
        OwnGroup = ownGroup;
        ProcessId = task.ProcessId;
        Exited = WaitForExit(task, stdoutClosed);
    }

    public int ProcessId { get; }

    /// <summary>It leads its own process group (its id is the group's).</summary>
    public bool OwnGroup { get; }

    /// <summary>The mark in its environment that what it starts inherits (<see cref="ProcessMarks"/>); null where none is followed.</summary>
    public string? Mark { get; }

    /// <summary>Completes with the exit code once the process has exited and its output is fully read.</summary>
    public Task<int> Exited { get; }

    /// <summary>Completes once the first output was read from its stdout (it has booted, as far as that can be seen).</summary>
    public Task FirstOutput { get; }

    /// <summary>
    /// Starts the process; <paramref name="onStdoutReadEnd"/> runs after the lines of each read from stdout. Throws
    /// (<see cref="FileNotFoundException"/> when the program is nowhere to be found, <see cref="System.ComponentModel.Win32Exception"/>
    /// when it cannot be run) when it cannot be started.
    /// </summary>
    public static CliProcess Start(
        ProcessLaunch launch,
        Action<ReadOnlyMemory<byte>> onStdoutLine,
        Action<Protocol.DroppedLine> onOversizedLine,
        Action<string> onStderrLine,
        Action? onStdoutReadEnd = null)
    {
        var stdin = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
        var stdinSource = PipeSource.Create(async (stream, ct) =>
        {
            await foreach (var line in stdin.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await stream.WriteAsync(line, ct).ConfigureAwait(false);
                await stream.FlushAsync(ct).ConfigureAwait(false);
            }
        });
        var firstOutput = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stdoutClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stdoutTarget = PipeTarget.Create(async (stream, ct) =>
        {
            try
            {
                await Protocol.LineReader.ReadLinesAsync(stream, launch.MaxLineBytes, onStdoutLine, onOversizedLine, () =>
                {
                    firstOutput.TrySetResult();
                    onStdoutReadEnd?.Invoke();
                }, ct).ConfigureAwait(false);
            }
            finally
            {
                stdoutClosed.TrySetResult();
            }
        });

        var program = Executables.Locate(launch.FileName)
            ?? throw new FileNotFoundException("no executable file of that name, nor a program of that name on PATH", launch.FileName);
        var ownGroup = Posix.SetSid is not null;
        var mark = ProcessMarks.NewMark();
        var environment = mark is null
            ? launch.Environment
            : new Dictionary<string, string?>(launch.Environment) { [ProcessMarks.Variable] = mark };
        var command = Cli.Wrap(Posix.SetSid ?? program)
            .WithArguments(ownGroup ? [program, .. launch.Arguments] : launch.Arguments)
            .WithWorkingDirectory(launch.WorkingDirectory)
            .WithEnvironmentVariables(environment)
            .WithStandardInputPipe(stdinSource)
            .WithStandardOutputPipe(stdoutTarget)
            .WithStandardErrorPipe(PipeTarget.Create((stream, ct) => Protocol.LineReader.ReadLinesAsync(stream, MaxStderrLineBytes,
                line => onStderrLine(Encoding.UTF8.GetString(line.Span)),
                dropped => onStderrLine($"(a stderr line of {dropped.Bytes:N0} bytes, over the {MaxStderrLineBytes / 1024} KB kept for the log, skipped)"),
                cancellationToken: ct, segmentBytes: 1024))) // stderr is quiet: a small buffer held while it waits
            .WithValidation(CommandResultValidation.None);

        var kill = new CancellationTokenSource();
        // Once started, the process has its environment: the start's copy of the host's (a few KB of strings per CLI, kept
        // by the Process object for as long as the CLI runs) is let go.
        // Its exit, seen by the Process CliWrap started and waits on (no wait of its own): a command it left holding its stdout
        // must not hide it (nor its exit code, which only that Process can read).
        Process? started = null;
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = command.ExecuteAsync(null, process =>
        {
            process.StartInfo.Environment.Clear();
            started = process;
            // Added before CliWrap's own (as it starts waiting for the exit), so it runs first: done by the time CliWrap's task ends.
            process.Exited += (_, _) => exited.TrySetResult();
        }, kill.Token);
        if (started!.HasExited) // a safeguard: an exit before the handler was added
            exited.TrySetResult();
        return new CliProcess(stdin, kill, task, started, exited.Task, ownGroup, mark, firstOutput.Task, stdoutClosed.Task);
    }

    /// <summary>Queues one line for stdin. Returns false once input is closed.</summary>
    public bool TryWrite(byte[] line) => _stdin.Writer.TryWrite(line);

    /// <summary>Closes stdin: the CLI finishes the running turn, then exits.</summary>
    public void CloseInput() => _stdin.Writer.TryComplete();

    public bool HasExited => Exited.IsCompleted;

    /// <summary>
    /// Graceful stop: close stdin and wait; then SIGTERM and wait; then kill the whole process tree.
    /// Safe to call more than once and after the process has exited.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        CloseInput();
        if (await ExitsWithin(grace).ConfigureAwait(false))
            return;
        if (!HasExited && !_processExited.IsCompleted)
            Posix.Signal(ProcessId, Posix.SigTerm, OwnGroup);
        if (await ExitsWithin(TimeSpan.FromSeconds(2)).ConfigureAwait(false))
            return;
        await Kill().ConfigureAwait(false);
        await ExitsWithin(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
    }

    /// <summary>
    /// Kills the process and every process it started, on the thread pool (not an actor's thread): its tree first, while
    /// its root still holds it together (CliWrap's cancellation, <c>Process.Kill(entireProcessTree)</c>, which reads
    /// <c>/proc</c> for every process on the machine), then its group (also tools its tree no longer shows: reparented).
    /// </summary>
    public Task Kill() => Task.Run(() =>
    {
        CancelCommand();
        if (OwnGroup && !HasExited && !_processExited.IsCompleted)
            Posix.Signal(ProcessId, Posix.SigKill, group: true);
    });

    private async Task<bool> ExitsWithin(TimeSpan timeout)
    {
        try
        {
            await Exited.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>How long its pipes may stay open once it has exited and what it left running was ended: held by a process that escaped both.</summary>
    private static readonly TimeSpan PipesGrace = TimeSpan.FromSeconds(5);

    private async Task<int> WaitForExit(CommandTask<CommandResult> task, Task stdoutClosed)
    {
        var ended = false;
        try
        {
            await Task.WhenAny(task.Task, stdoutClosed, _processExited).ConfigureAwait(false);
            if (!task.Task.IsCompleted)
            {
                // It has exited, or its stdout is closed (it is ending). CliWrap's task ends once the process has exited and its
                // pipes are closed, and a process it started with its stdout or stderr (a command given its parent's) holds them
                // open: what it left running is ended at its own exit, not at its pipes' close, which would wait for that process.
                await Task.WhenAny(task.Task, _processExited).ConfigureAwait(false);
                _exitCode = ExitCodeOf(_started);
                await EndWhatItLeft().ConfigureAwait(false);
                ended = true;
                if (await Task.WhenAny(task.Task, Task.Delay(PipesGrace)).ConfigureAwait(false) != task.Task)
                    CancelCommand(); // its pipes are given up: what a reader still waits for is not coming
            }
            var result = await task.ConfigureAwait(false);
            return result.ExitCode;
        }
        catch (OperationCanceledException)
        {
            // Its pipes given up once it had exited (its own exit code, read then), or killed by CliWrap's cancellation (SIGKILL
            // to its tree).
            return _exitCode ?? 128 + Posix.SigKill;
        }
        finally
        {
            _stdin.Writer.TryComplete();
            if (!ended)
                await EndWhatItLeft().ConfigureAwait(false);
        }
    }

    private static int? ExitCodeOf(Process started)
    {
        try
        {
            return started.HasExited ? started.ExitCode : null;
        }
        catch (InvalidOperationException)
        {
            return null; // CliWrap let it go meanwhile: its task has the exit code
        }
    }

    /// <summary>No process outlives the CLI that started it: those of its group, and those it started outside it (<see cref="ProcessMarks"/>).</summary>
    private async Task EndWhatItLeft()
    {
        if (OwnGroup)
            Posix.Signal(ProcessId, Posix.SigKill, group: true);
        await ProcessMarks.KillAsync(Mark).ConfigureAwait(false);
    }

    /// <summary>CliWrap's cancellation: kills the process's tree and stops its pipes.</summary>
    private void CancelCommand()
    {
        try
        {
            _kill.Cancel();
        }
        catch (AggregateException)
        {
            // a process of the tree could not be killed: the group's SIGKILL, and the one once the CLI exits, follow
        }
    }
}
