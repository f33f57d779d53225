using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Konsole.Actors.Configuration;
using PersistenceSettings = Konsole.Actors.Configuration.PersistenceSettings;
using Konsole.Actors.Durability;
using Konsole.Testing;
using Microsoft.Data.Sqlite;

namespace Konsole.Actors.Tests.Durability;

/// <summary>
/// The SQLite journal against a real database file, each step in an actor system of its own (as runs of the host are),
/// and side by side with Akka.Persistence.Sql's journal on the same file.
/// </summary>
public sealed class SqliteJournalSpecs : IDisposable
{
    private const string PluginJournal = "akka.persistence.journal.sql";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly KonsoleSandbox _sandbox = KonsoleSandbox.Create(accounts: 0);
    private readonly PersistenceSettings _settings;

    public SqliteJournalSpecs()
    {
        _settings = new PersistenceSettings("SQLite.MS", $"Data Source={Path.Combine(_sandbox.DataDir, "konsole.db")}");
        PersistenceSetup.Prepare(_settings);
    }

    [Fact]
    public async Task Is_the_journal_on_sqlite_and_reads_and_writes_a_database_the_plugin_created_and_the_plugin_reads_it_back()
    {
        Assert.Equal(PersistenceSetup.SqliteJournalId, PersistenceSetup.Hocon(_settings).GetString("akka.persistence.journal.plugin"));

        await WithRecorderAsync(PluginJournal, async recorder => Assert.Equal(1, await WriteAsync(recorder, "a"))); // as a host before it did
        await WithRecorderAsync(null, async recorder =>
        {
            Assert.Equal(new Recovered(["a"], 1), await recorder.Ask<Recovered>(Read.Instance, Timeout));
            Assert.Equal(2, await WriteAsync(recorder, "b"));
        });
        Assert.Equal(["journal_uq"], OnDatabase("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'journal' AND sql IS NOT NULL"));
        await WithRecorderAsync(PluginJournal, async recorder =>
        {
            Assert.Equal(new Recovered(["a", "b"], 2), await recorder.Ask<Recovered>(Read.Instance, Timeout));
            Assert.Equal(3, await WriteAsync(recorder, "c"));
        });
        await WithRecorderAsync(null, async recorder => Assert.Equal(new Recovered(["a", "b", "c"], 3), await recorder.Ask<Recovered>(Read.Instance, Timeout)));
    }

    [Fact]
    public async Task Deleted_events_are_not_replayed_and_numbering_goes_on_above_them()
    {
        await WithRecorderAsync(null, async recorder =>
        {
            foreach (var text in new[] { "a", "b", "c" })
                await WriteAsync(recorder, text);
            Assert.IsType<DeleteMessagesSuccess>(await recorder.Ask(new Delete(2), Timeout));
        });
        await WithRecorderAsync(null, async recorder =>
        {
            Assert.Equal(new Recovered(["c"], 3), await recorder.Ask<Recovered>(Read.Instance, Timeout));
            Assert.IsType<DeleteMessagesSuccess>(await recorder.Ask(new Delete(long.MaxValue), Timeout));
        });
        await WithRecorderAsync(null, async recorder =>
        {
            Assert.Equal(new Recovered([], 3), await recorder.Ask<Recovered>(Read.Instance, Timeout));
            Assert.Equal(4, await WriteAsync(recorder, "d"));
        });
        await WithRecorderAsync(PluginJournal, async recorder => Assert.Equal(new Recovered(["d"], 4), await recorder.Ask<Recovered>(Read.Instance, Timeout)));
    }

    [Fact]
    public async Task Many_actors_writing_at_once_each_get_back_all_their_events_in_order()
    {
        const int actors = 20, events = 50;
        var ids = Enumerable.Range(0, actors).Select(i => $"recorder-{i}").ToArray();
        await InSystemAsync(null, async system =>
        {
            var recorders = ids.Select(id => system.ActorOf(Props.Create(() => new Recorder(id)))).ToArray();
            await Task.WhenAll(recorders.Select(async r =>
            {
                // Not awaited one by one: each actor's writes queue up behind each other while the others write too.
                var writes = Enumerable.Range(1, events).Select(n => WriteAsync(r, $"e{n}")).ToArray();
                Assert.Equal(Enumerable.Range(1, events).Select(n => (long)n), await Task.WhenAll(writes));
            }));
        });

        await InSystemAsync(null, async system =>
        {
            foreach (var id in ids)
            {
                var recorder = system.ActorOf(Props.Create(() => new Recorder(id)));
                var expected = Enumerable.Range(1, events).Select(n => $"e{n}").ToArray();
                Assert.Equal(new Recovered(expected, events), await recorder.Ask<Recovered>(Read.Instance, Timeout));
            }
        });
    }

    [Fact]
    public async Task An_event_that_cannot_be_serialized_is_rejected_alone_and_the_actor_writes_on()
    {
        await WithRecorderAsync(null, async recorder =>
        {
            Assert.Equal(1, await WriteAsync(recorder, "a"));
            var rejected = await recorder.Ask<string>(new WriteUnwritable(), Timeout);
            Assert.StartsWith("rejected #2: Error getting value from 'Value'", rejected);
            Assert.Equal(3, await WriteAsync(recorder, "b")); // the rejected event had taken #2
        });
        await WithRecorderAsync(null, async recorder => Assert.Equal(new Recovered(["a", "b"], 3), await recorder.Ask<Recovered>(Read.Instance, Timeout)));
    }

    [Fact]
    public async Task A_write_the_database_refuses_fails_the_actor_and_the_journal_writes_again_once_it_accepts()
    {
        await InSystemAsync(null, async system =>
        {
            var recorder = system.ActorOf(Props.Create(() => new Recorder("p-1")));
            Assert.Equal(1, await WriteAsync(recorder, "a"));
            OnDatabase("ALTER TABLE journal RENAME TO journal_away");

            var watcher = new TaskCompletionSource();
            var probe = system.ActorOf(Props.Create(() => new Watcher(recorder, watcher)));
            recorder.Tell(new Write("b"), probe);
            await watcher.Task.WaitAsync(Timeout); // Akka stops a persistent actor whose write failed

            OnDatabase("ALTER TABLE journal_away RENAME TO journal");
            var again = system.ActorOf(Props.Create(() => new Recorder("p-1")));
            Assert.Equal(new Recovered(["a"], 1), await again.Ask<Recovered>(Read.Instance, Timeout));
            Assert.Equal(2, await WriteAsync(again, "c"));
        });
    }

    [Fact]
    public async Task The_embedded_database_is_in_wal_mode_a_reader_does_not_hold_up_a_write_and_a_second_writer_waits_for_the_first()
    {
        var defaults = KonsoleConfig.Parse($"konsole.data-dir = \"{Path.Combine(_sandbox.DataDir, "defaults")}\"").Settings.Persistence;
        PersistenceSetup.Prepare(defaults);
        using var reader = Connect(defaults);
        using var writer = Connect(defaults);
        using var second = Connect(defaults);
        Assert.Equal(30, reader.DefaultTimeout); // how long a busy database is retried, in seconds
        Execute(writer, "CREATE TABLE t (v INTEGER)");
        Assert.Equal("wal", Execute(reader, "PRAGMA journal_mode"));

        using (var reading = reader.BeginTransaction(deferred: true))
        {
            Execute(reader, "SELECT count(*) FROM t", reading); // a snapshot's read, say, under way
            Execute(writer, "INSERT INTO t VALUES (1)"); // not held up (without WAL: "database is locked" once the timeout passed)
        }
        using var held = writer.BeginTransaction(deferred: false); // a journal write under way: the write lock taken
        Execute(writer, "INSERT INTO t VALUES (2)", held);
        var waiting = Task.Run(() => Execute(second, "INSERT INTO t VALUES (3)"));
        await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(500)));
        Assert.False(waiting.IsCompleted, $"the second writer did not wait for the first: {waiting.Exception?.InnerException?.Message}");
        held.Commit();
        await waiting.WaitAsync(Timeout);

        Assert.Equal("3", Execute(reader, "SELECT count(*) FROM t"));
    }

    private static SqliteConnection Connect(PersistenceSettings settings)
    {
        var connection = new SqliteConnection(settings.ConnectionString + ";Pooling=false");
        connection.Open();
        return connection;
    }

    private static string? Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command.ExecuteScalar()?.ToString();
    }

    public void Dispose() => _sandbox.Dispose();

    private static async Task<long> WriteAsync(IActorRef recorder, string text) => await recorder.Ask<long>(new Write(text), Timeout);

    /// <summary>Runs <paramref name="test"/> on actor p-1 in an actor system of its own, on <paramref name="journal"/> (null: the configured one).</summary>
    private Task WithRecorderAsync(string? journal, Func<IActorRef, Task> test) =>
        InSystemAsync(journal, system => test(system.ActorOf(Props.Create(() => new Recorder("p-1")))));

    private async Task InSystemAsync(string? journal, Func<ActorSystem, Task> test)
    {
        var config = PersistenceSetup.Hocon(_settings).WithFallback(KonsoleConfig.Defaults);
        if (journal is not null)
            config = ConfigurationFactory.ParseString($"akka.persistence.journal.plugin = \"{journal}\"").WithFallback(config);
        var system = ActorSystem.Create("journal-spec", config);
        try
        {
            await test(system);
        }
        finally
        {
            await system.Terminate().WaitAsync(Timeout);
        }
    }

    /// <summary>Runs <paramref name="sql"/> on a connection of its own; returns the first column of the rows it gives.</summary>
    private List<string> OnDatabase(string sql)
    {
        using var connection = Connect(_settings);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
            rows.Add(reader.GetString(0));
        return rows;
    }

    private sealed record Write(string Text);

    private sealed record WriteUnwritable;

    private sealed record Read
    {
        public static readonly Read Instance = new();
    }

    private sealed record Delete(long To);

    private sealed record Recovered(IReadOnlyList<string> Events, long LastSequenceNr)
    {
        public bool Equals(Recovered? other) => other is not null && Events.SequenceEqual(other.Events) && LastSequenceNr == other.LastSequenceNr;

        public override int GetHashCode() => LastSequenceNr.GetHashCode();

        public override string ToString() => $"[{string.Join(", ", Events)}] up to #{LastSequenceNr}";
    }

    /// <summary>Newtonsoft (Akka's serializer for anything not bound to another) reads this property, and fails.</summary>
    private sealed class Unwritable
    {
        public string Value => throw new InvalidOperationException("cannot be written");
    }

    /// <summary>Persists <see cref="RolesAssigned"/> events (the text as the dashboard), which the journal writes as JSON.</summary>
    private sealed class Recorder : ReceivePersistentActor
    {
        private readonly List<string> _events = [];
        private IActorRef _asker = ActorRefs.Nobody;

        public Recorder(string persistenceId)
        {
            PersistenceId = persistenceId;
            Recover<RolesAssigned>(e => _events.Add(e.Dashboard));
            Command<Write>(w =>
            {
                var asker = Sender;
                Persist(new RolesAssigned(w.Text, ""), e =>
                {
                    _events.Add(e.Dashboard);
                    asker.Tell(LastSequenceNr);
                });
            });
            Command<WriteUnwritable>(_ =>
            {
                _asker = Sender;
                Persist(new Unwritable(), _ => { });
            });
            Command<Read>(_ => Sender.Tell(new Recovered([.. _events], LastSequenceNr)));
            Command<Delete>(d =>
            {
                _asker = Sender;
                DeleteMessages(d.To);
            });
            Command<DeleteMessagesSuccess>(m => _asker.Tell(m));
            Command<DeleteMessagesFailure>(m => _asker.Tell(m));
        }

        public override string PersistenceId { get; }

        protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr) =>
            _asker.Tell($"rejected #{sequenceNr}: {cause.Message}");
    }

    private sealed class Watcher : ReceiveActor
    {
        public Watcher(IActorRef watched, TaskCompletionSource stopped)
        {
            Context.Watch(watched);
            Receive<Terminated>(_ => stopped.TrySetResult());
            ReceiveAny(_ => { });
        }
    }
}
