using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Konsole.Actors.Processes;
using Konsole.Testing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace Konsole.Bench;

/// <summary>
/// Scenario 5: what an idle account costs the supervisor. The real host program (its own Release build, run from its
/// own output directory) is started as a process of its own with 2, 50 and 200 sandbox accounts on FakeClaude (each
/// account keeps two hot processes: full and chat), a fresh host per count. Once <c>/readyz</c> answers 200 (the start
/// time) and it has idled, the host's own memory is read from /proc (its CLI processes are other processes and are not
/// counted). The per-account cost is the slope between the smallest and the largest count. Then a full GC is induced
/// over EventPipe to split the managed heap from the rest, and the host is stopped with SIGTERM; no CLI may outlive it.
/// </summary>
public static partial class MemoryBench
{
    public static readonly int[] DefaultAccountCounts = [2, 50, 200];
    private static readonly TimeSpan ListenTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan CliExitTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ReadyPollTimeout = TimeSpan.FromSeconds(10);
    private const int Samples = 5; // /proc read once a second after the idle time; the median of each figure is kept
    private const double TargetKbPerAccount = 100;
    private const int Attempts = 3; // a host that fails to start (see HostStartFailed) is tried again, fresh; each failure is reported

    /// <summary>konsole.dll of the host build made alongside this program (see Konsole.Bench.csproj).</summary>
    public static string HostPath { get; } = typeof(MemoryBench).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "KonsoleHost")?.Value ?? throw new InvalidOperationException("no KonsoleHost metadata: build with Konsole.Bench.csproj");

    /// <param name="accountCounts">Two or more, ascending: the per-account figures are taken between the first and the last.</param>
    public static async Task<Report> RunAsync(int[] accountCounts)
    {
        if (!File.Exists(HostPath))
            throw new FileNotFoundException($"the host program is not built at {HostPath}", HostPath);
        var runs = new List<Run>();
        var failedStarts = new List<string>();
        foreach (var accounts in accountCounts)
        {
            Run run;
            for (var attempt = 1; ; attempt++)
            {
                Console.Error.WriteLine($"memory: starting the host with {accounts} accounts (attempt {attempt}, load average {LoadAverage()}) ...");
                try
                {
                    run = await MeasureAsync(accounts);
                    break;
                }
                catch (HostStartFailed e) when (attempt < Attempts)
                {
                    Console.Error.WriteLine(e.Message);
                    failedStarts.Add($"{accounts} accounts, attempt {attempt} (load average {e.LoadAverage}): {e.Reason}");
                }
            }
            Console.Error.WriteLine($"memory: {accounts} accounts: ready in {run.ReadySeconds:0.0}s, VmRSS {Mb(run.Idle.VmRss):0.0} MB, " +
                $"RssAnon {Mb(run.Idle.RssAnon):0.0} MB, {run.CliProcesses} CLI processes");
            runs.Add(run);
        }
        return Write(runs, failedStarts);
    }

    private static Report Write(IReadOnlyList<Run> runs, IReadOnlyList<string> failedStarts)
    {
        var report = new Report("Supervisor memory per idle account (scenario 5)");
        report.Line($"The host program ({Path.GetFileName(HostPath)}, Release, workstation GC: DOTNET_gcServer=0, as its runtimeconfig has it) run as a process of its own, a fresh one per account count, " +
            "each account on FakeClaude with its two hot processes (full, chat). Figures are the host's own process (/proc/<pid>/status, " +
            $"smaps_rollup), CLI processes excluded: the median of {Samples} reads a second apart after {Idle.TotalSeconds:0}s idle past `/readyz` = 200. " +
            $"{Environment.ProcessorCount} cores; load average (1, 5, 15 min) when each host was measured: " +
            string.Join("; ", runs.Select(r => $"{r.Accounts} accounts {r.LoadAverage}")) + ".");
        report.Table(["accounts", "CLI processes", "start → listening s", "start → ready s", "VmRSS MB", "RssAnon MB", "RssFile MB", "Pss MB", "threads", "fds",
            "system memory in use MB", "warnings / errors logged", "SIGTERM → exit s", "CLIs left"],
            runs.Select(r => new[]
            {
                $"{r.Accounts}", $"{r.CliProcesses}", $"{r.ListeningSeconds:0.00}", $"{r.ReadySeconds:0.00}", $"{Mb(r.Idle.VmRss):0.0}", $"{Mb(r.Idle.RssAnon):0.0}",
                $"{Mb(r.Idle.RssFile):0.0}", $"{Mb(r.Idle.Pss):0.0}", $"{r.Idle.Threads}", $"{r.Idle.Fds}", $"{Mb(r.SystemInUseKb):0}",
                $"{r.Warnings}", $"{r.StopSeconds:0.0} (exit {r.ExitCode})", $"{r.LeftOver}",
            }));
        report.Line("System memory in use: MemTotal − MemAvailable while the host idled (the host and all its CLI processes, plus the rest of the machine).");
        foreach (var r in runs.Where(r => r.FirstWarning is not null))
            report.Line($"- {r.Accounts} accounts, first warning/error: `{r.FirstWarning}`");
        foreach (var failure in failedStarts)
            report.Line($"- a host that failed to start and was replaced by a fresh one: {failure}");

        report.Line("\nManaged heap after a full GC induced over EventPipe (GCHeapCollect), read after the figures above:");
        report.Table(["accounts", "GC heap MB (live + free space)", "gen0 MB", "gen1 MB", "gen2 MB", "LOH MB", "POH MB", "GC handles", "pinned objects", "GC committed MB",
            "thread-pool threads", "VmRSS after GC MB", "RssAnon after GC MB", "RssAnon − GC committed MB"],
            runs.Select(r => r.Heap is { } h
                ? new[]
                {
                    $"{r.Accounts}", $"{Mb(h.Total / 1024.0):0.00}", $"{Mb(h.Gen0 / 1024.0):0.00}", $"{Mb(h.Gen1 / 1024.0):0.00}", $"{Mb(h.Gen2 / 1024.0):0.00}",
                    $"{Mb(h.Loh / 1024.0):0.00}", $"{Mb(h.Poh / 1024.0):0.00}", $"{h.Handles}", $"{h.Pinned}", Or(h.CommittedMb, "0.0"), Or(h.ThreadPoolThreads, "0"),
                    $"{Mb(r.AfterGc!.VmRss):0.0}", $"{Mb(r.AfterGc.RssAnon):0.0}", Or(h.CommittedMb is { } c ? Mb(r.AfterGc.RssAnon) - c : (double?)null, "0.0"),
                }
                : [$"{r.Accounts}", $"n/a: {r.HeapError}", "", "", "", "", "", "", "", "", "", "", "", ""]));

        var (low, high) = (runs[0], runs[^1]);
        var span = high.Accounts - low.Accounts;
        double PerAccountKb(Func<Run, double> kb) => (kb(high) - kb(low)) / span;
        var rss = PerAccountKb(r => r.Idle.VmRss);
        var anon = PerAccountKb(r => r.Idle.RssAnon);
        report.Line($"Per idle account, (figure({high.Accounts}) − figure({low.Accounts})) / {span}:\n");
        report.Line($"- VmRSS: **{rss:0.0} KB** per account; RssAnon: **{anon:0.0} KB**; RssFile: {PerAccountKb(r => r.Idle.RssFile):0.0} KB; " +
            $"Pss: {PerAccountKb(r => r.Idle.Pss):0.0} KB (Pss divides the pages of the runtime's files among every process mapping them, the FakeClaude processes and any other .NET process on the machine, so it moves with them: VmRSS and RssAnon are the host's own figures)");
        report.Line($"- threads: {PerAccountKb(r => r.Idle.Threads):0.00} per account; file descriptors: {PerAccountKb(r => r.Idle.Fds):0.00} per account");
        if (low.Heap is { } lh && high.Heap is { } hh)
        {
            report.Line($"- managed heap after a full GC: {(hh.Total - lh.Total) / 1024.0 / span:0.0} KB per account (gen2 {(hh.Gen2 - lh.Gen2) / 1024.0 / span:0.0} KB, " +
                $"LOH {(hh.Loh - lh.Loh) / 1024.0 / span:0.0} KB, POH {(hh.Poh - lh.Poh) / 1024.0 / span:0.0} KB); GC handles {(double)(hh.Handles - lh.Handles) / span:0.0} per account" +
                (hh.CommittedMb is { } hc && lh.CommittedMb is { } lc ? $"; GC committed {(hc - lc) * 1024 / span:0.0} KB per account" : ""));
            report.Line($"- RssAnon after that GC: {PerAccountKb(r => r.AfterGc!.RssAnon):0.0} KB per account" +
                (hh.CommittedMb is { } hc2 && lh.CommittedMb is { } lc2
                    ? $"; of it outside the GC heap (RssAnon − GC committed): {((Mb(high.AfterGc!.RssAnon) - hc2) - (Mb(low.AfterGc!.RssAnon) - lc2)) * 1024 / span:0.0} KB"
                    : ""));
        }
        if (runs.Count > 2)
            report.Line($"- linearity: {low.Accounts} → {runs[1].Accounts} accounts {(runs[1].Idle.VmRss - low.Idle.VmRss) / (runs[1].Accounts - low.Accounts):0.0} KB VmRSS per account, " +
                $"{runs[1].Accounts} → {high.Accounts}: {(high.Idle.VmRss - runs[1].Idle.VmRss) / (high.Accounts - runs[1].Accounts):0.0} KB");
        report.Line($"- `/readyz` while starting (polled every 0.1 s, each poll given {ReadyPollTimeout.TotalSeconds:0} s): " + string.Join("; ", runs.Select(r =>
            $"{r.Accounts} accounts {r.ReadyPolls.Count} polls, answered in p50 {r.ReadyPolls.P50:0} ms, slowest {r.ReadyPolls.Percentile(1):0} ms" +
            (r.ReadyPolls.CountAtLeast(ReadyPollTimeout.TotalMilliseconds) is > 0 and var late ? $", {late} not answered in time" : ""))));
        report.Line($"- start → ready: {string.Join(", ", runs.Select(r => $"{r.Accounts} accounts {r.ReadySeconds:0.0}s"))} " +
            $"({(high.ReadySeconds - low.ReadySeconds) * 1000 / (high.CliProcesses - low.CliProcesses):0} ms per CLI process beyond the first {low.CliProcesses})");
        report.Line("");
        report.Verdict($"< {TargetKbPerAccount:0} KB per idle account (VmRSS {rss:0.0} KB, RssAnon {anon:0.0} KB)", rss < TargetKbPerAccount);
        report.Check("no CLI process outlives the host", runs.All(r => r.LeftOver == 0));
        return report;
    }

    private static double Mb(double kb) => kb / 1024;

    private static string Or<T>(T? value, string format) where T : struct, IFormattable => value is { } v ? v.ToString(format, null) : "n/a";

    private static async Task<Run> MeasureAsync(int accounts)
    {
        using var sandbox = KonsoleSandbox.Create(accounts);
        var config = Path.Combine(sandbox.Root, "konsole.hocon");
        await File.WriteAllTextAsync(config, sandbox.Hocon(FakeClaudeCli.Path, extraHocon: """konsole.gateway.urls = "http://127.0.0.1:0" """));
        using var host = HostProcess.Start(config, sandbox.Root);
        // Interrupted (Ctrl+C, SIGTERM), this program would leave the host and its CLIs running: end them first.
        using var onSigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => host.KillAll());
        using var onSigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => host.KillAll());
        try
        {
            var listening = await host.WaitListeningAsync(ListenTimeout);
            var listeningSeconds = host.Clock.Elapsed.TotalSeconds;
            var readyPolls = await host.WaitReadyAsync(listening, ReadyTimeout);
            var readySeconds = host.Clock.Elapsed.TotalSeconds;

            await Task.Delay(Idle);
            var samples = new List<ProcMemory>();
            var systemInUse = new List<long>();
            for (var i = 0; i < Samples; i++)
            {
                if (i > 0)
                    await Task.Delay(TimeSpan.FromSeconds(1));
                samples.Add(ProcMemory.Read(host.Pid));
                systemInUse.Add(SystemInUseKb());
            }
            var clis = Children(host.Pid).Count;
            var load = LoadAverage();
            var (heap, heapError) = await HeapProbe.RunAsync(host.Pid);
            var afterGc = ProcMemory.Read(host.Pid);

            var stopClock = Stopwatch.StartNew();
            var (exitCode, leftOver) = await host.StopAsync(StopTimeout, CliExitTimeout);
            var (warnings, first) = host.Warnings();
            return new Run(accounts, clis, listeningSeconds, readySeconds, readyPolls, ProcMemory.Median(samples), Median(systemInUse), heap, heapError,
                afterGc, stopClock.Elapsed.TotalSeconds, exitCode, leftOver, warnings, first, load);
        }
        finally
        {
            host.KillAll(); // a no-op after a clean stop; after a failure, nothing this run started is left running (before the sandbox goes)
        }
    }

    private static long Median(List<long> values) => values.Order().ElementAt(values.Count / 2);

    private static long SystemInUseKb()
    {
        var info = File.ReadAllLines("/proc/meminfo").Select(l => l.Split(':', 2)).ToDictionary(p => p[0], p => Kb(p[1]));
        return info["MemTotal"] - info["MemAvailable"];
    }

    private static long Kb(string value) => long.Parse(value.Trim().Split(' ')[0]);

    /// <summary>Processes whose parent is <paramref name="pid"/>.</summary>
    private static List<int> Children(int pid) => Pids().Where(p => ParentOf(p) == pid).ToList();

    private static IEnumerable<int> Pids() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Select(n => int.TryParse(n, out var p) ? p : 0).Where(p => p > 0);

    private static int? ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The current directory of a process, when it can be read.</summary>
    private static string? CwdOf(int pid)
    {
        try
        {
            return new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private sealed record Run(
        int Accounts, int CliProcesses, double ListeningSeconds, double ReadySeconds, Samples ReadyPolls, ProcMemory Idle, long SystemInUseKb,
        ManagedHeap? Heap, string? HeapError, ProcMemory? AfterGc, double StopSeconds, int ExitCode, int LeftOver, int Warnings, string? FirstWarning,
        string LoadAverage);

    /// <summary>The host did not come up healthy (it exited, logged an error, or never listened or became ready in time).</summary>
    private sealed class HostStartFailed(string reason, string output) : Exception($"memory benchmark: {reason}. The host's output ends:\n{output}")
    {
        public string Reason { get; } = reason;

        public string LoadAverage { get; } = MemoryBench.LoadAverage();
    }

    private static string LoadAverage() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    /// <summary>One process's memory (KB) as /proc tells it.</summary>
    private sealed record ProcMemory(long VmRss, long RssAnon, long RssFile, long RssShmem, long Pss, long PssAnon, long Threads, long Fds)
    {
        public static ProcMemory Read(int pid)
        {
            var status = Fields($"/proc/{pid}/status");
            var rollup = Fields($"/proc/{pid}/smaps_rollup");
            return new ProcMemory(Kb(status["VmRSS"]), Kb(status["RssAnon"]), Kb(status["RssFile"]), Kb(status["RssShmem"]),
                Kb(rollup["Pss"]), Kb(rollup["Pss_Anon"]), Kb(status["Threads"]), Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").LongCount());
        }

        public static ProcMemory Median(IReadOnlyList<ProcMemory> samples)
        {
            long M(Func<ProcMemory, long> field) => samples.Select(field).Order().ElementAt(samples.Count / 2);
            return new ProcMemory(M(s => s.VmRss), M(s => s.RssAnon), M(s => s.RssFile), M(s => s.RssShmem), M(s => s.Pss), M(s => s.PssAnon), M(s => s.Threads), M(s => s.Fds));
        }

        private static Dictionary<string, string> Fields(string path) =>
            File.ReadAllLines(path).Select(l => l.Split(':', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0].Trim(), p => p[1]);
    }

    /// <summary>The managed heap after a full GC (bytes), and the runtime's own counters read right after it.</summary>
    private sealed record ManagedHeap(long Total, long Gen0, long Gen1, long Gen2, long Loh, long Poh, long Handles, long Pinned, double? CommittedMb, double? ThreadPoolThreads);

    /// <summary>
    /// One EventPipe session on the host: the GCHeapCollect keyword makes the runtime run a full blocking GC, whose
    /// GCHeapStats event gives the live heap by generation; the System.Runtime event counters give what the GC has
    /// committed. No code in the host is needed; it costs the host an EventPipe session while it runs.
    /// </summary>
    private static class HeapProbe
    {
        private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

        public static async Task<(ManagedHeap? Heap, string? Error)> RunAsync(int pid)
        {
            try
            {
                return (await ProbeAsync(pid), null);
            }
            catch (Exception e) when (e is TimeoutException or ServerNotAvailableException or UnsupportedCommandException or IOException)
            {
                return (null, e.Message);
            }
        }

        private static async Task<ManagedHeap> ProbeAsync(int pid)
        {
            var client = new DiagnosticsClient(pid);
            EventPipeProvider[] providers =
            [
                new("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, (long)(ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.GCHeapCollect)),
                new("System.Runtime", EventLevel.Informational, 0xFFFFFFFF, new Dictionary<string, string> { ["EventCounterIntervalSec"] = "1" }),
            ];
            using var session = client.StartEventPipeSession(providers, requestRundown: false);
            var heap = new TaskCompletionSource<GCHeapStatsTraceData>(TaskCreationOptions.RunContinuationsAsynchronously);
            var counters = new TaskCompletionSource<(double Committed, double? ThreadPool)>(TaskCreationOptions.RunContinuationsAsynchronously);
            var induced = false;
            double? threadPool = null;
            using var source = new EventPipeEventSource(session.EventStream);
            source.Clr.GCStart += e => induced |= e.Reason == GCReason.Induced && e.Depth == 2;
            source.Clr.GCHeapStats += e =>
            {
                if (induced)
                    heap.TrySetResult((GCHeapStatsTraceData)e.Clone());
            };
            source.Dynamic.All += e =>
            {
                if (e.EventName != "EventCounters" || !heap.Task.IsCompleted)
                    return;
                var payload = (IDictionary<string, object>)((IDictionary<string, object>)e.PayloadValue(0))["Payload"];
                var value = Convert.ToDouble(payload.TryGetValue("Mean", out var mean) ? mean : payload["Increment"]);
                switch (payload["Name"])
                {
                    case "threadpool-thread-count":
                        threadPool = value;
                        break;
                    case "gc-committed":
                        counters.TrySetResult((value, threadPool));
                        break;
                }
            };
            var processing = Task.Run(source.Process);
            try
            {
                var stats = await heap.Task.WaitAsync(Timeout);
                // The counters of a round come in a fixed order; wait for a second round so thread-pool threads are in.
                var (committed, _) = await counters.Task.WaitAsync(Timeout);
                counters = new TaskCompletionSource<(double, double?)>(TaskCreationOptions.RunContinuationsAsynchronously);
                var (_, pool) = await counters.Task.WaitAsync(Timeout);
                return new ManagedHeap(stats.TotalHeapSize, stats.GenerationSize0, stats.GenerationSize1, stats.GenerationSize2, stats.GenerationSize3,
                    stats.GenerationSize4, stats.GCHandleCount, stats.PinnedObjectCount, committed, pool);
            }
            finally
            {
                try
                {
                    session.Stop();
                }
                catch (Exception e) when (e is ServerNotAvailableException or IOException or TimeoutException)
                {
                    // the host went away: the stream ends on its own
                }
                await processing.WaitAsync(Timeout);
            }
        }
    }

    /// <summary>The host program run as a process, its output collected; it and every CLI it started end with it.</summary>
    private sealed partial class HostProcess : IDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly Process _process;
        private readonly string _sandboxRoot;
        private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _error = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private string? _errorLine;
        private string? _errorNext;

        private HostProcess(Process process, string sandboxRoot)
        {
            _process = process;
            _sandboxRoot = sandboxRoot;
        }

        public Stopwatch Clock { get; } = Stopwatch.StartNew();

        public int Pid { get; private init; }

        public static HostProcess Start(string config, string sandboxRoot)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add(HostPath);
            start.ArgumentList.Add("--config");
            start.ArgumentList.Add(config);
            start.Environment["DOTNET_gcServer"] = "0"; // as the host's runtimeconfig has it; stated so no inherited setting changes what is measured
            var process = Process.Start(start) ?? throw new InvalidOperationException("the host did not start");
            var host = new HostProcess(process, sandboxRoot) { Pid = process.Id };
            host.Clock.Restart();
            DataReceivedEventHandler collect = (_, e) =>
            {
                if (e.Data is null)
                    return;
                lock (host._output)
                {
                    host._output.AppendLine(e.Data);
                    // An error logged while starting (e.g. a persistent actor's recovery timing out) means it will not come up
                    // healthy; the line after it names the exception.
                    if (host._errorLine is not null)
                        host._errorNext ??= e.Data.Trim();
                    else if (e.Data.Contains(" ERR] ") || e.Data.Contains(" FTL] "))
                    {
                        host._errorLine = e.Data.Trim();
                        host._error.TrySetResult();
                    }
                }
                if (ListeningOn().Match(e.Data) is { Success: true } m)
                    host._listening.TrySetResult(new Uri(m.Groups[1].Value));
            };
            process.OutputDataReceived += collect;
            process.ErrorDataReceived += collect;
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return host;
        }

        public string Output
        {
            get { lock (_output) return _output.ToString(); }
        }

        public (int Count, string? First) Warnings()
        {
            var lines = Output.Split('\n').Where(l => l.Contains(" WRN] ") || l.Contains(" ERR] ") || l.Contains(" FTL] ")).ToList();
            return (lines.Count, lines.FirstOrDefault()?.Trim());
        }

        public async Task<Uri> WaitListeningAsync(TimeSpan timeout)
        {
            var exited = _process.WaitForExitAsync();
            var done = await Task.WhenAny(_listening.Task, exited, _error.Task, Task.Delay(timeout));
            if (done == _listening.Task)
                return await _listening.Task;
            throw StartFailed(done == exited ? $"the host exited with code {_process.ExitCode} before it listened"
                : done == _error.Task ? $"the host logged an error while starting: {Error}"
                : $"the host did not listen within {timeout}");
        }

        /// <summary>Polls <c>/readyz</c> until it answers 200; returns how long each poll took to be answered (or to time out).</summary>
        public async Task<Samples> WaitReadyAsync(Uri listening, TimeSpan timeout)
        {
            using var client = new HttpClient { BaseAddress = listening, Timeout = ReadyPollTimeout };
            var polls = new Samples("/readyz while starting");
            var deadline = Clock.Elapsed + timeout;
            while (true)
            {
                if (_process.HasExited)
                    throw StartFailed($"the host exited with code {_process.ExitCode} before it was ready");
                if (_error.Task.IsCompleted)
                    throw StartFailed($"the host logged an error while starting: {Error}");
                if (Clock.Elapsed > deadline)
                    throw StartFailed($"/readyz did not answer 200 within {timeout} ({Children(Pid).Count} CLI processes running)");
                var poll = Stopwatch.StartNew();
                try
                {
                    using var response = await client.GetAsync("/readyz");
                    polls.Add(poll.Elapsed.TotalMilliseconds);
                    if (response.IsSuccessStatusCode)
                        return polls;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    polls.Add(poll.Elapsed.TotalMilliseconds); // not answered in time (a host too busy starting its CLIs): ask again
                }
                await Task.Delay(100);
            }
        }

        /// <summary>SIGTERM, then waits for the host to exit and for its CLI processes to be gone; kills what is left.</summary>
        public async Task<(int ExitCode, int LeftOver)> StopAsync(TimeSpan timeout, TimeSpan cliTimeout)
        {
            if (!Posix.Signal(Pid, Posix.SigTerm, group: false))
                throw Failure("could not send SIGTERM to the host");
            try
            {
                await _process.WaitForExitAsync().WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                throw Failure($"the host did not exit within {timeout} of SIGTERM");
            }
            var deadline = DateTime.UtcNow + cliTimeout;
            List<int> alive;
            while ((alive = Ours()).Count > 0 && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            foreach (var pid in alive)
            {
                Console.Error.WriteLine($"memory: CLI pid {pid} outlived the host by {cliTimeout}; killing it");
                Posix.Signal(pid, Posix.SigKill, group: false);
            }
            return (_process.ExitCode, alive.Count);
        }

        /// <summary>Kills the host, if still running, and every CLI process of this run still alive.</summary>
        public void KillAll()
        {
            lock (_process)
            {
                try
                {
                    if (!_process.HasExited)
                    {
                        _process.Kill();
                        _process.WaitForExit(TimeSpan.FromSeconds(10));
                    }
                }
                catch (InvalidOperationException)
                {
                    // exited meanwhile
                }
                foreach (var pid in Ours())
                    Posix.Signal(pid, Posix.SigKill, group: false);
            }
        }

        public void Dispose()
        {
            KillAll();
            lock (_process)
                _process.Dispose();
        }

        /// <summary>
        /// The CLI processes of this run still alive: every process working in the run's sandbox (the CLIs' working
        /// directory, which nothing else uses), whether or not the host is still their parent.
        /// </summary>
        private List<int> Ours() =>
            Pids().Where(p => p != Pid && CwdOf(p) is { } cwd && cwd.StartsWith(_sandboxRoot, StringComparison.Ordinal)).ToList();

        private Exception Failure(string message) => new InvalidOperationException($"memory benchmark: {message}. The host's output ends:\n{Tail}");

        private HostStartFailed StartFailed(string reason) => new(reason, Tail);

        private string Error
        {
            get { lock (_output) return $"`{_errorLine}` {(_errorNext is null ? "" : $"`{_errorNext}`")}".TrimEnd(); }
        }

        private string Tail => Output is var output && output.Length > 4000 ? output[^4000..] : Output;

        [GeneratedRegex(@"Gateway listening on (http://\S+)")]
        private static partial Regex ListeningOn();
    }
}
