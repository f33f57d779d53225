using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using BenchmarkDotNet.Attributes;
using Konsole.Actors.Configuration;
using Konsole.Actors.Durability;
using Konsole.Testing;

namespace Konsole.Bench.Micro;

/// <summary>
/// One journal write as a session makes it (persist one event, then go on), a round trip from the asking thread: through
/// Akka.Persistence.Sql on SQLite (the baseline: the journal before <see cref="SqliteJournal"/>), through
/// <see cref="SqliteJournal"/>, and through Akka's in-memory journal (the floor: the persistence protocol's hops alone).
/// Each in an actor system of its own, with the host's persistence settings (the plugin's connections with the same
/// <c>synchronous=NORMAL</c>) and a database file of its own.
/// </summary>
public class JournalWrites
{
    private readonly List<(ActorSystem System, KonsoleSandbox Sandbox)> _systems = [];
    private IActorRef _plugin = ActorRefs.Nobody;
    private IActorRef _ours = ActorRefs.Nobody;
    private IActorRef _inMemory = ActorRefs.Nobody;

    [GlobalSetup]
    public void Setup()
    {
        _plugin = Start("akka.persistence.journal.plugin = \"akka.persistence.journal.sql\"");
        _ours = Start("");
        _inMemory = Start(PersistenceSetup.InMemory.Root.ToString());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (system, sandbox) in _systems)
        {
            system.Terminate().Wait();
            sandbox.Dispose();
        }
    }

    [Benchmark(Baseline = true)]
    public Task<long> PluginOnSqlite() => _plugin.Ask<long>(Writer.Write, TimeSpan.FromSeconds(10));

    [Benchmark]
    public Task<long> SqliteJournalWrite() => _ours.Ask<long>(Writer.Write, TimeSpan.FromSeconds(10));

    [Benchmark]
    public Task<long> InMemoryJournal() => _inMemory.Ask<long>(Writer.Write, TimeSpan.FromSeconds(10));

    private IActorRef Start(string hocon)
    {
        var sandbox = KonsoleSandbox.Create(accounts: 0);
        var settings = new Konsole.Actors.Configuration.PersistenceSettings("SQLite.MS", $"Data Source={Path.Combine(sandbox.DataDir, "konsole.db")}");
        PersistenceSetup.Prepare(settings);
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING\n" + hocon)
            .WithFallback(PersistenceSetup.Hocon(settings)).WithFallback(KonsoleConfig.Defaults);
        var system = ActorSystem.Create("journal-bench", BootstrapSetup.Create().WithConfig(config).And(PersistenceSetup.Connections(settings)));
        _systems.Add((system, sandbox));
        return system.ActorOf(Props.Create(() => new Writer()));
    }

    /// <summary>Persists a prompt's dispatch record per request and answers with its sequence number once written.</summary>
    private sealed class Writer : ReceivePersistentActor
    {
        public static readonly object Write = new();

        public Writer()
        {
            CommandAny(_ =>
            {
                var asker = Sender;
                Persist(new PromptDispatchRecorded("p-0123456789abcdef"), _ => asker.Tell(LastSequenceNr));
            });
        }

        public override string PersistenceId => "journal-bench";
    }
}
