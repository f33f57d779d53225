using Akka.Configuration;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using LinqToDB;
using Konsole.Actors.Configuration;
using Microsoft.Data.Sqlite;

namespace Konsole.Actors.Durability;

/// <summary>
/// The journal and snapshot store on <c>konsole.persistence</c>, an embedded SQLite file by default: Akka.Persistence.Sql
/// (Linq2Db), with <see cref="SqliteJournal"/> as the journal on SQLite. Journal and snapshots share the database;
/// SQLite runs in WAL mode so readers and the writer do not block each other, and retries a busy database for the
/// connection's <c>Default Timeout</c>.
/// </summary>
public static class PersistenceSetup
{
    /// <summary>
    /// Makes the database ready before the actor system starts: for SQLite, its directory exists, the file opens, and it
    /// is in WAL mode (which the file keeps). Throws <see cref="KonsoleConfigException"/> naming what is wrong.
    /// </summary>
    public static void Prepare(PersistenceSettings settings)
    {
        if (!settings.IsSqlite)
            return;
        try
        {
            var path = new SqliteConnectionStringBuilder(settings.ConnectionString).DataSource;
            if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } directory)
                Directory.CreateDirectory(directory);
            using var connection = new SqliteConnection(settings.ConnectionString);
            connection.Open();
            using var wal = connection.CreateCommand();
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            var mode = wal.ExecuteScalar() as string;
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                throw new KonsoleConfigException($"konsole.persistence: the SQLite database would not switch to WAL mode (it is in '{mode}')");
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // it holds prompts
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new KonsoleConfigException($"konsole.persistence: cannot open the database ({e.Message})");
        }
    }

    /// <summary>The HOCON for the journal and the snapshot store, with the plugin's defaults under it.</summary>
    public static Config Hocon(PersistenceSettings settings)
    {
        var connection = Quote(settings.ConnectionString);
        // Not a server's (its password): Akka logs the HOCON of a plugin it cannot create (a bad akka.persistence value). The plugin
        // gets it from Connections' setup instead.
        var pluginConnection = settings.IsSqlite ? $"connection-string = {connection}," : "";
        var provider = Quote(settings.Provider);
        // Reading state back competes with every CLI process starting at once (hundreds, on a few cores): Akka's 30 s can
        // pass before the snapshot store answers, and a host whose roles did not recover stops (StateUnrecoverable).
        // use-clone-connection = off: the plugin's default clones its connection options for every write, and Linq2Db then
        // builds a new mapping schema each time (a tenth of a journal write's time, measured on SQLite).
        // The plugins run on two threads of their own: Microsoft.Data.Sqlite's async calls run synchronously, and on the
        // shared thread pool a write held up whatever was queued behind it on that thread (an idle role swap's answer
        // waited 1.2 ms for the write that followed it, against 0.15 ms here).
        var journal = settings.IsSqlite ? SqliteJournalId : "akka.persistence.journal.sql";
        return ConfigurationFactory.ParseString($$"""
            akka.persistence {
              dispatchers.konsole-journal-dispatcher {
                type = ForkJoinDispatcher
                throughput = 100
                dedicated-thread-pool { thread-count = 2, threadtype = background }
              }
              journal {
                plugin = "{{journal}}"
                konsole-sqlite {
                  class = "{{typeof(SqliteJournal).AssemblyQualifiedName}}"
                  connection-string = {{connection}}
                  recovery-event-timeout = 120s
                  plugin-dispatcher = {{Dispatcher}}
                }
                sql {
                  {{pluginConnection}} provider-name = {{provider}}, auto-initialize = true, parallelism = 3
                  recovery-event-timeout = 120s, use-clone-connection = off
                  plugin-dispatcher = {{Dispatcher}}, materializer-dispatcher = {{Dispatcher}}
                }
              }
              snapshot-store {
                plugin = "akka.persistence.snapshot-store.sql"
                sql {
                  {{pluginConnection}} provider-name = {{provider}}, auto-initialize = true, use-clone-connection = off
                  plugin-dispatcher = {{Dispatcher}}
                }
              }
            }
            """).WithFallback(SqlPersistence.DefaultConfiguration);
    }

    /// <summary>The journal on SQLite: <see cref="SqliteJournal"/>.</summary>
    public const string SqliteJournalId = "akka.persistence.journal.konsole-sqlite";

    /// <summary>
    /// Run on every SQLite connection (a per-connection setting the file does not keep): in WAL mode a commit then no
    /// longer waits for the disk, only for the OS. It survives the host being killed, though not the machine losing power
    /// mid-write.
    /// </summary>
    internal const string SqliteConnectionPragma = "PRAGMA synchronous=NORMAL;";

    /// <summary>
    /// The plugin's connections: to a server, on its connection string (which <see cref="Hocon"/> leaves out); to SQLite, with
    /// <see cref="SqliteConnectionPragma"/> run on every connection it opens.
    /// </summary>
    public static DataOptionsSetup Connections(PersistenceSettings settings)
    {
        var options = new DataOptions().UseConnectionString(settings.Provider, settings.ConnectionString);
        if (!settings.IsSqlite)
            return new DataOptionsSetup(options);
        return new DataOptionsSetup(options
            .UseAfterConnectionOpened(
                connection =>
                {
                    using var command = connection.CreateCommand();
                    command.CommandText = SqliteConnectionPragma;
                    command.ExecuteNonQuery();
                },
                async (connection, cancel) =>
                {
                    await using var command = connection.CreateCommand();
                    command.CommandText = SqliteConnectionPragma;
                    await command.ExecuteNonQueryAsync(cancel).ConfigureAwait(false);
                }));
    }

    /// <summary>Akka.Persistence's in-memory journal: gone with the actor system.</summary>
    public const string InMemoryJournalId = "akka.persistence.journal.inmem";

    /// <summary>Akka.Persistence's in-memory snapshot store.</summary>
    public const string InMemorySnapshotStoreId = "akka.persistence.snapshot-store.inmem";

    /// <summary>In memory, for tests: gone with the actor system.</summary>
    public static Config InMemory { get; } = ConfigurationFactory.ParseString($"""
        akka.persistence.journal.plugin = "{InMemoryJournalId}"
        akka.persistence.snapshot-store.plugin = "{InMemorySnapshotStoreId}"
        """);

    private const string Dispatcher = "\"akka.persistence.dispatchers.konsole-journal-dispatcher\"";

    private static string Quote(string value) => System.Text.Json.JsonSerializer.Serialize(value);
}
