using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Microsoft.Data.Sqlite;

namespace Konsole.Actors.Durability;

/// <summary>
/// The journal on SQLite, the default database: the <c>journal</c> table Akka.Persistence.Sql reads and writes (a
/// database either wrote, the other reads), written through one connection the journal keeps open, its statements
/// prepared once. Through the plugin a write cost 0.24 to 0.30 ms, of which SQLite's own work was 0.04 to 0.06 ms: a new
/// connection and transaction per write, its SQL built again per call, and the hops of a batching stream
/// (BENCHMARKS.md, section 1). Other databases keep the plugin.
/// </summary>
/// <remarks>
/// Microsoft.Data.Sqlite runs its async calls synchronously, so every call here runs on the journal's own dispatcher
/// (<see cref="PersistenceSetup"/>) and holds it for the statement's time, never the shared pool. The lock serves the
/// calls Akka makes from task continuations beside the actor's own.
/// </remarks>
public sealed class SqliteJournal : AsyncWriteJournal
{
    // The plugin's table, less what only Akka.Persistence.Query reads (Konsole does not): AUTOINCREMENT (a row of
    // sqlite_sequence rewritten per insert) and the indexes on created and on sequence_number (dropped from a database
    // the plugin created). Each is a page more per commit, written to the log and checkpointed: 194 µs a write with
    // them, 115 µs without (BENCHMARKS.md). Ordering still only grows: a persistence id's last row is never deleted.
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS [journal]
        (
            [ordering]        INTEGER        NOT NULL PRIMARY KEY,
            [created]         INTEGER        NOT NULL,
            [deleted]         Bit            NOT NULL,
            [persistence_id]  NVarChar(255)  NOT NULL,
            [sequence_number] INTEGER        NOT NULL,
            [message]         VarBinary      NOT NULL,
            [manifest]        NVarChar(500)      NULL,
            [identifier]      INTEGER            NULL,
            [writer_uuid]     NVarChar(128)      NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS journal_uq ON journal (persistence_id, sequence_number);
        DROP INDEX IF EXISTS journal_created_idx;
        DROP INDEX IF EXISTS journal_sequence_number_idx;
        """;

    private readonly Akka.Serialization.Serialization _serialization = Context.System.Serialization;
    private readonly string _writerUuid = Guid.NewGuid().ToString("N");
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insert;
    private readonly SqliteCommand _highest;
    private readonly SqliteCommand _replay;

    public SqliteJournal(Config config)
    {
        _connection = new SqliteConnection(config.GetString("connection-string"));
        _connection.Open();
        Execute(PersistenceSetup.SqliteConnectionPragma + Schema);
        _insert = Prepare("""
            INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid)
            VALUES ($created, 0, $pid, $seq, $message, $manifest, $identifier, $writer)
            """, "$created", "$pid", "$seq", "$message", "$manifest", "$identifier", "$writer");
        _highest = Prepare(
            "SELECT MAX(sequence_number) FROM journal WHERE persistence_id = $pid AND sequence_number >= $from", "$pid", "$from");
        _replay = Prepare("""
            SELECT sequence_number, message, manifest, identifier, writer_uuid, created FROM journal
            WHERE persistence_id = $pid AND sequence_number >= $from AND sequence_number <= $to AND deleted = 0
            ORDER BY sequence_number LIMIT $max
            """, "$pid", "$from", "$to", "$max");
    }

    protected override Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken) =>
        Locked<IImmutableList<Exception?>>(() =>
        {
            var now = DateTime.UtcNow.Ticks;
            var results = ImmutableList.CreateBuilder<Exception?>();
            var rows = new List<(IPersistentRepresentation Event, byte[] Message, string Manifest, int Serializer)>();
            using var transaction = _connection.BeginTransaction();
            _insert.Transaction = transaction;
            foreach (var write in messages)
            {
                // A write whose event cannot be serialized is rejected alone (its actor is told, and lives on).
                rows.Clear();
                try
                {
                    foreach (var e in (IImmutableList<IPersistentRepresentation>)write.Payload)
                    {
                        var serializer = _serialization.FindSerializerFor(e.Payload);
                        rows.Add((e, serializer.ToBinary(e.Payload), Akka.Serialization.Serialization.ManifestFor(serializer, e.Payload), serializer.Identifier));
                    }
                }
                catch (Exception rejected)
                {
                    results.Add(rejected);
                    continue;
                }
                foreach (var (e, message, manifest, serializer) in rows)
                {
                    var p = _insert.Parameters;
                    p[0].Value = e.Timestamp == 0 ? now : e.Timestamp;
                    p[1].Value = e.PersistenceId;
                    p[2].Value = e.SequenceNr;
                    p[3].Value = message;
                    p[4].Value = manifest;
                    p[5].Value = serializer;
                    p[6].Value = _writerUuid;
                    _insert.ExecuteNonQuery();
                }
                results.Add(null);
            }
            transaction.Commit();
            return results.ToImmutable();
        });

    public override Task ReplayMessagesAsync(
        IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max, Action<IPersistentRepresentation> recoveryCallback) =>
        Locked(() =>
        {
            var p = _replay.Parameters;
            p[0].Value = persistenceId;
            p[1].Value = fromSequenceNr;
            p[2].Value = toSequenceNr;
            p[3].Value = max;
            using var reader = _replay.ExecuteReader();
            while (reader.Read())
            {
                var sequenceNr = reader.GetInt64(0);
                if (reader.IsDBNull(3))
                    throw new InvalidDataException($"journal row {persistenceId} #{sequenceNr} names no serializer");
                var manifest = reader.IsDBNull(2) ? "" : reader.GetString(2);
                var payload = _serialization.Deserialize((byte[])reader.GetValue(1), reader.GetInt32(3), manifest);
                recoveryCallback(new Persistent(
                    payload, sequenceNr, persistenceId, manifest, false, ActorRefs.NoSender,
                    reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetInt64(5)));
            }
            return true;
        });

    /// <summary>Counts rows marked deleted: <see cref="DeleteMessagesToAsync"/> keeps the highest one for this.</summary>
    public override Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken) =>
        Locked(() =>
        {
            _highest.Parameters[0].Value = persistenceId;
            _highest.Parameters[1].Value = fromSequenceNr;
            return _highest.ExecuteScalar() is long highest ? highest : 0L;
        });

    /// <summary>As the plugin does: the last row up to <paramref name="toSequenceNr"/> stays, marked deleted, the rest go.</summary>
    protected override Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken) =>
        Locked(() =>
        {
            using var transaction = _connection.BeginTransaction();
            using var delete = _connection.CreateCommand();
            delete.Transaction = transaction;
            delete.CommandText = """
                UPDATE journal SET deleted = 1 WHERE persistence_id = $pid AND sequence_number =
                    (SELECT MAX(sequence_number) FROM journal WHERE persistence_id = $pid AND sequence_number <= $to);
                DELETE FROM journal WHERE persistence_id = $pid AND sequence_number <
                    (SELECT MAX(sequence_number) FROM journal WHERE persistence_id = $pid AND sequence_number <= $to);
                """;
            delete.Parameters.AddWithValue("$pid", persistenceId);
            delete.Parameters.AddWithValue("$to", toSequenceNr);
            delete.ExecuteNonQuery();
            transaction.Commit();
            return true;
        });

    protected override void PostStop()
    {
        lock (_connection)
        {
            _insert.Dispose();
            _highest.Dispose();
            _replay.Dispose();
            _connection.Dispose();
        }
        base.PostStop();
    }

    /// <summary>Runs <paramref name="work"/> on the connection, alone; its result, or its exception, as a completed task.</summary>
    private Task<T> Locked<T>(Func<T> work)
    {
        try
        {
            lock (_connection)
                return Task.FromResult(work());
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        command.Prepare();
        return command;
    }
}
