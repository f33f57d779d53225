using Akka.Actor;
using Konsole.Actors.Processes;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Konsole.Testing.FakeApi;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionProtocol;

namespace Konsole.Integration.Tests;

/// <summary>Fault 1 on the real CLI: turns on three sessions while about one CLI process in ten turns is SIGKILLed.</summary>
[Collection(RealClaudeCollection.Name)]
public sealed class RealClaudeChaosSpecs(ITestOutputHelper output, RealClaudeFixture cli) : KonsoleSpec(output, accounts: 2), IAsyncLifetime
{
    private const int Turns = 30;
    private static readonly TimeSpan Turn = TimeSpan.FromSeconds(120);
    private FakeMessagesApi _api = null!;

    public async Task InitializeAsync() => _api = await FakeMessagesApi.StartAsync();

    public async Task DisposeAsync() => await _api.DisposeAsync();

    [Fact]
    public async Task Every_accepted_prompt_gets_exactly_one_end_conversations_resume_and_no_cli_is_left()
    {
        var settings = Sandbox.Settings(cli.Path, FakeMessagesApi.CliEnvironment(_api.BaseUrl),
            "konsole.claude.restart { min-backoff = 50ms, max-backoff = 500ms, max-restarts = 1000 }");
        var router = this.StartAccounts(settings);
        await this.WaitUntilWarmAsync(router, Turn);
        var sessions = this.StartSessions(router, settings);
        var full = (await sessions.Ask<SessionInfo>(new CreateSession(SessionType.Full), Turn)).SessionId;
        var chat = (await sessions.Ask<SessionInfo>(new CreateSession(SessionType.Chat), Turn)).SessionId;
        var tracker = CliProcessTracker.Get(Sys);
        var seen = new HashSet<int>(tracker.LiveProcessIds);
        var random = new Random(3);
        var ends = new List<string>();
        var kills = 0;

        for (var n = 0; n < Turns; n++)
        {
            var accepted = await sessions.Ask<PromptAccepted>(new SubmitPrompt(n % 3 == 2 ? chat : full, $"[[api-slow:4:40]] turn {n}"), Turn);
            if (n % 10 == 5)
            {
                // Mid-turn, once it started: a kill the CLI cannot see coming.
                using var started = new CancellationTokenSource(Turn);
                while ((await accepted.Events.ReadAsync(started.Token)).Type != "system") { }
                var live = tracker.LiveProcessIds.ToArray();
                seen.UnionWith(live);
                if (Posix.Signal(live[random.Next(live.Length)], Posix.SigKill, group: true))
                    kills++;
            }
            var events = await accepted.Events.ReadToEndAsync(Turn);
            Assert.Single(events, e => e.EndsPrompt);
            ends.Add(events[^1].Type == "error" ? System.Text.Json.JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("code").GetString()! : events[^1].Type);
            seen.UnionWith(tracker.LiveProcessIds);
        }
        var after = await sessions.Ask<PromptAccepted>(new SubmitPrompt(full, "after the kills"), Turn);
        Assert.Equal("result", (await after.Events.ReadToEndAsync(Turn))[^1].Type);
        var request = await _api.WaitForRequestAsync(r => r.LastUserText == "after the kills", Turn);
        Assert.Contains(request.UserTexts, t => t.Contains("turn 0")); // the full session's conversation came through the kills

        await Sys.Terminate();
        Assert.Empty(tracker.LiveProcessIds);
        Assert.All(seen, pid => Assert.Null(Posix.StartTime(pid)));
        Output.WriteLine($"FIGURES real CLI chaos: {Turns} prompts, {kills} SIGKILLs mid-turn, outcomes " +
            $"{string.Join(", ", ends.GroupBy(e => e).OrderBy(g => g.Key).Select(g => $"{g.Key}={g.Count()}"))}, conversation resumed, " +
            $"{seen.Count} CLI processes seen, 0 left");
    }
}
