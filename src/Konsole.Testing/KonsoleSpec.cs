using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Actors.Processes;
using Konsole.Actors.Prompts;
using Xunit.Abstractions;

namespace Konsole.Testing;

/// <summary>
/// A TestKit spec with a <see cref="KonsoleSandbox"/> of <c>accounts</c> accounts. Every CLI process its
/// actor system starts is stopped when the system shuts down (see <see cref="LiveCliProcesses"/>).
/// </summary>
public abstract class KonsoleSpec : TestKit
{
    /// <summary>How long a test waits for a turn (FakeClaude answers in milliseconds; this is a hang guard).</summary>
    public static readonly TimeSpan TurnTimeout = TimeSpan.FromSeconds(30);

    private static readonly Config TestConfig = ConfigurationFactory.ParseString("akka.loglevel = INFO")
        .WithFallback(PersistenceSetup.InMemory)
        .WithFallback(KonsoleConfig.Defaults);

    /// <param name="config">HOCON over the spec's defaults (e.g. another journal plugin).</param>
    protected KonsoleSpec(ITestOutputHelper output, int accounts = 2, string? config = null)
        : base(config is null ? TestConfig : ConfigurationFactory.ParseString(config).WithFallback(TestConfig), output: output)
    {
        Sandbox = KonsoleSandbox.Create(accounts);
        CliProcessTracker.Get(Sys);
    }

    protected KonsoleSandbox Sandbox { get; }

    /// <summary>Process ids of the CLI processes of this actor system that have not exited yet.</summary>
    protected IReadOnlyCollection<int> LiveCliProcesses => CliProcessTracker.Get(Sys).LiveProcessIds;

    /// <summary>A prompt whose replies go to a new probe.</summary>
    protected (Prompt Prompt, TestProbe Caller) NewPrompt(string text, string session = "ses-1", ConversationRef? conversation = null)
    {
        var caller = CreateTestProbe();
        return (new Prompt(Prompt.NewId(), session, text, conversation, caller.Ref), caller);
    }

    /// <summary>A new probe that receives what is published on the event stream of <paramref name="types"/>, from now on.</summary>
    protected TestProbe EventsOf(params Type[] types)
    {
        var probe = CreateTestProbe();
        foreach (var type in types)
            Sys.EventStream.Subscribe(probe, type);
        return probe;
    }

    // After the actor system (and with it every CLI process) has shut down.
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
            Sandbox.Dispose();
    }
}
