using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Konsole.Actors.Processes;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Reliability.Tests;

/// <summary>
/// Fault 1: a thousand turns through the sessions and accounts (FakeClaude, two accounts, a journal in memory) while
/// about one CLI process in ten turns is killed with SIGKILL at a random moment.
/// </summary>
public sealed class ChaosSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 2)
{
    private const int Turns = 1000;
    private const int InFlight = 24;
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Every_accepted_prompt_gets_exactly_one_end_conversations_resume_and_no_cli_is_left()
    {
        var settings = Sandbox.Settings(FakeClaudeCli.Path, extraHocon: """
            konsole.claude.restart { min-backoff = 10ms, max-backoff = 200ms, max-restarts = 100000 }
            konsole.queue.max-depth = 1000
            konsole.sessions.max-workers = 2
            """);
        var router = this.StartAccounts(settings);
        await this.WaitUntilWarmAsync(router);
        var sessions = this.StartSessions(router, settings);
        var ids = new List<string>();
        // One full session (the dashboard's process), three workers (processes of their own), six chat sessions.
        SessionType[] types = [SessionType.Full, .. Enumerable.Repeat(SessionType.Worker, 3), .. Enumerable.Repeat(SessionType.Chat, 6)];
        foreach (var type in types)
            ids.Add((await sessions.Ask<SessionInfo>(new CreateSession(type), Ask)).SessionId);

        var tracker = CliProcessTracker.Get(Sys);
        var seenPids = new HashSet<int>();
        var clock = Stopwatch.StartNew();
        var completed = 0;
        var kills = 0;
        using var done = new CancellationTokenSource();
        var killer = Task.Run(async () =>
        {
            var random = new Random(42);
            while (!done.IsCancellationRequested)
            {
                var live = tracker.LiveProcessIds.ToArray();
                lock (seenPids) seenPids.UnionWith(live);
                if (Volatile.Read(ref completed) / 10 > kills && live.Length > 0)
                {
                    // A random moment: most of them mid-turn, some between turns or while a process starts.
                    if (Posix.Signal(live[random.Next(live.Length)], Posix.SigKill, group: true))
                        kills++;
                }
                await Task.Delay(random.Next(1, 15));
            }
        });

        using var slots = new SemaphoreSlim(InFlight);
        var outcomes = await Task.WhenAll(Enumerable.Range(0, Turns).Select(async n =>
        {
            await slots.WaitAsync();
            try
            {
                var accepted = await sessions.Ask<PromptAccepted>(new SubmitPrompt(ids[n % ids.Count], $"[[chunks:3:2]] p{n}"), Ask);
                var events = await accepted.Events.ReadToEndAsync(TimeSpan.FromSeconds(120));
                Interlocked.Increment(ref completed);
                return events;
            }
            finally
            {
                slots.Release();
            }
        }));
        await done.CancelAsync();
        await killer;

        var ends = outcomes.Select(events => events.Count(e => e.EndsPrompt)).ToList();
        Assert.All(ends, count => Assert.Equal(1, count)); // exactly one end per accepted prompt...
        Assert.All(outcomes, events => Assert.True(events[^1].EndsPrompt)); // ...and it is the last
        var byOutcome = outcomes.GroupBy(Outcome).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(byOutcome.Keys, k => Assert.Contains(k, new[] { "result", "error:process_crashed", "error:interrupted" }));

        // Conversations resume: the next turn of each full and worker session still sees its earlier prompts.
        var resumed = 0;
        foreach (var id in ids.Take(4))
        {
            var accepted = await sessions.Ask<PromptAccepted>(new SubmitPrompt(id, "after the storm"), Ask);
            var last = (await accepted.Events.ReadToEndAsync(TimeSpan.FromSeconds(60)))[^1];
            Assert.Equal("result", last.Type);
            if (JsonDocument.Parse(last.Data).RootElement.GetProperty("result").GetString()!.Contains("[history: "))
                resumed++;
        }
        Assert.Equal(4, resumed);
        var seconds = clock.Elapsed.TotalSeconds;

        await Sys.Terminate();
        Assert.Empty(tracker.LiveProcessIds);
        var orphans = seenPids.Where(pid => Posix.StartTime(pid) is not null && IsFakeClaude(pid)).ToList();
        Assert.Empty(orphans);

        Output.WriteLine($"FIGURES chaos: {Turns} prompts in {seconds:0.0}s, {kills} SIGKILLs ({100.0 * kills / Turns:0.0}%), " +
            $"outcomes {string.Join(", ", byOutcome.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}"))}, " +
            $"{seenPids.Count} CLI processes seen, {resumed}/4 conversations resumed, 0 orphans");
    }

    private static string Outcome(IReadOnlyList<SessionEvent> events) =>
        events[^1].Type == "error" ? $"error:{JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("code").GetString()}" : events[^1].Type;

    private static bool IsFakeClaude(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains("FakeClaude", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
