using System.Collections.Concurrent;
using Akka.Actor;

namespace Konsole.Actors.Processes;

/// <summary>
/// Every CLI process started in an actor system, until it has exited. Actors start their processes through it
/// (<see cref="StartAsync"/>, off their own thread) and hand a process over when they stop (stopping it takes seconds and
/// must not block them); coordinated shutdown waits for the starts under way, then stops and waits for the last process,
/// so no CLI outlives its actor system. With <see cref="RecordIn"/>, each
/// live process also has a pid record on disk, so one left behind by a host that was killed outright
/// is found and ended at the next start (<see cref="OrphanReaper"/>).
/// </summary>
public sealed class CliProcessTracker : IExtension
{
    private readonly ConcurrentDictionary<int, (CliProcess Process, TimeSpan Grace, Task Untracked)> _live = new();
    private readonly HashSet<Task> _starting = []; // guarded by itself, as is _stopping
    // Starting a process holds its thread until the child has exec'd: tens of milliseconds while hundreds of CLIs boot. On the
    // thread pool, 400 starts at once (200 accounts) held its threads for most of a minute, and the host's own work (HTTP
    // requests, the roles read back from the journal) waited behind them. Starts run on a thread of their own, in the order
    // asked (guarded by _starting: no start is queued after shutdown has begun).
    private readonly BlockingCollection<Action> _starts = new();
    private Thread? _starter;
    // Booting CLIs take the machine's CPU, and the host's own threads (every answer it gives, the roles read back from the
    // journal) wait for theirs: with 400 booting at once (200 accounts on 2 cores), for most of a minute. As many boot at a
    // time as there are cores, which keeps them all busy; a boot ends at the process's first output (its answer to
    // initialize), its exit, or its start timeout.
    private readonly SemaphoreSlim _booting = new(Environment.ProcessorCount);
    private readonly CancellationTokenSource _shutdown = new();
    private volatile bool _waitingToBoot; // only the starts' thread writes it
    private bool _stopping;
    private string? _runDir;

    /// <summary>Keeps a pid record of each process in <paramref name="runDir"/> while it lives.</summary>
    public void RecordIn(string runDir)
    {
        Directory.CreateDirectory(runDir);
        _runDir = runDir;
    }

    public static CliProcessTracker Get(ActorSystem system) => system.WithExtension<CliProcessTracker, CliProcessTrackerProvider>();

    /// <summary>Process ids of the CLI processes still running.</summary>
    public IReadOnlyCollection<int> LiveProcessIds => _live.Keys.ToArray();

    /// <summary>Whether a start is waiting for one of the processes booting to finish its boot.</summary>
    internal bool WaitingToBoot => _waitingToBoot;

    /// <summary>
    /// Runs <paramref name="start"/> on the tracker's own thread, after the starts asked for before it and once fewer processes
    /// than the machine has cores are booting, and tracks the process it starts (a process whose tracking fails is killed).
    /// Once shutdown has begun (<see cref="StopAllAsync"/>), a start not yet under way is refused with
    /// <see cref="InvalidOperationException"/>; one not yet under way when <paramref name="cancel"/> is cancelled (its actor
    /// stopped) is cancelled.
    /// </summary>
    /// <param name="grace">How long stopping the process waits for it to finish.</param>
    /// <param name="bootTimeout">How long the process may take to print something before it no longer counts as booting.</param>
    public Task<CliProcess> StartAsync(Func<CliProcess> start, TimeSpan grace, TimeSpan bootTimeout, CancellationToken cancel = default)
    {
        lock (_starting)
        {
            if (_stopping)
                return Task.FromException<CliProcess>(ShuttingDown());
            var started = new TaskCompletionSource<CliProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
            _starts.Add(() => Run(start, grace, bootTimeout, cancel, started));
            if (_starter is null)
            {
                _starter = new Thread(() =>
                {
                    foreach (var run in _starts.GetConsumingEnumerable())
                        run(); // never throws: each start's outcome goes to its task
                }) { IsBackground = true, Name = "konsole-cli-starts" };
                _starter.Start();
            }
            _starting.Add(started.Task);
            started.Task.ContinueWith(done =>
            {
                lock (_starting)
                    _starting.Remove(done);
            }, TaskScheduler.Default);
            return started.Task;
        }
    }

    private void Run(Func<CliProcess> start, TimeSpan grace, TimeSpan bootTimeout, CancellationToken cancel, TaskCompletionSource<CliProcess> started)
    {
        using var stopOrCancel = CancellationTokenSource.CreateLinkedTokenSource(_shutdown.Token, cancel);
        try
        {
            if (!_booting.Wait(0, stopOrCancel.Token))
            {
                _waitingToBoot = true;
                _booting.Wait(stopOrCancel.Token); // this thread is the starts' own: waiting here holds nothing else back
            }
        }
        catch (OperationCanceledException)
        {
            if (_shutdown.IsCancellationRequested)
                started.SetException(ShuttingDown());
            else
                started.SetCanceled(cancel);
            return;
        }
        finally
        {
            _waitingToBoot = false;
        }
        try
        {
            var process = start();
            try
            {
                Track(process, grace);
                BootingUntilItPrints(process, bootTimeout);
            }
            catch
            {
                _ = process.Kill(); // untracked, it could outlive the actor system
                throw;
            }
            started.SetResult(process);
        }
        catch (Exception e)
        {
            _booting.Release();
            started.SetException(e);
        }
    }

    /// <summary>Holds a boot place until <paramref name="process"/> prints something, exits, or takes longer than <paramref name="timeout"/>.</summary>
    private void BootingUntilItPrints(CliProcess process, TimeSpan timeout)
    {
        var over = new CancellationTokenSource();
        var timedOut = timeout < MaxDelay ? Task.Delay(timeout, over.Token) : Task.Delay(Timeout.Infinite, over.Token);
        Task.WhenAny(process.FirstOutput, process.Exited, timedOut).ContinueWith(_ =>
        {
            _booting.Release();
            over.Cancel(); // the timer goes now, not when it would have fired
            over.Dispose();
        }, TaskScheduler.Default);
    }

    // Task.Delay's longest (about 49 days); a longer start timeout is as good as none here.
    private static readonly TimeSpan MaxDelay = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private static InvalidOperationException ShuttingDown() => new("the actor system is shutting down");

    /// <summary>Tracks <paramref name="process"/> until it exits; <paramref name="grace"/> is how long stopping it waits for it to finish.</summary>
    private void Track(CliProcess process, TimeSpan grace)
    {
        var record = _runDir is null ? null : OrphanReaper.Record(_runDir, process);
        var untracked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entry = (process, grace, untracked.Task);
        _live[process.ProcessId] = entry;
        process.Exited.ContinueWith(exited =>
        {
            // Its own entry only: the pid may already be a new CLI's. Its record goes before StopAllAsync is told it is done.
            _live.TryRemove(KeyValuePair.Create(process.ProcessId, entry));
            if (record is not null)
                OrphanReaper.Forget(record);
            untracked.SetResult();
        }, TaskScheduler.Default);
    }

    /// <summary>Stops a process in the background (close stdin, SIGTERM, kill tree).</summary>
    public void Stop(CliProcess process) =>
        _ = process.StopAsync(_live.TryGetValue(process.ProcessId, out var live) ? live.Grace : TimeSpan.Zero);

    /// <summary>
    /// Refuses new starts, waits for those under way (their processes are tracked once they finish), then stops every tracked
    /// process and waits for all of them to exit and be untracked (none is listed live after it).
    /// </summary>
    public async Task StopAllAsync()
    {
        Task[] starting;
        lock (_starting)
        {
            _stopping = true;
            _shutdown.Cancel(); // the starts queued are refused
            _starts.CompleteAdding(); // and the thread ends
            starting = [.. _starting];
        }
        await Task.WhenAll(starting.Select(s => s.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false); // failed ones too
        await Task.WhenAll(_live.Values.Select(async p =>
        {
            await p.Process.StopAsync(p.Grace).ConfigureAwait(false);
            if (p.Process.HasExited)
                await p.Untracked.ConfigureAwait(false); // its exit's bookkeeping runs right after the exit, on another thread
        })).ConfigureAwait(false);
    }
}

public sealed class CliProcessTrackerProvider : ExtensionIdProvider<CliProcessTracker>
{
    // The actor system does not end before its CLI processes.
    public override CliProcessTracker CreateExtension(ExtendedActorSystem system)
    {
        var tracker = new CliProcessTracker();
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "stop-cli-processes", async () =>
        {
            await tracker.StopAllAsync().ConfigureAwait(false);
            return Akka.Done.Instance;
        });
        return tracker;
    }
}
