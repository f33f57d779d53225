using System.Collections.Concurrent;
using Akka.Persistence;
using Akka.Persistence.Snapshot;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>
/// The in-memory snapshot store, except that saves for the persistence ids a test names wait, unanswered, until the test
/// releases them: a save still on its way, as a database's can be while the store runs the next request beside it.
/// </summary>
public sealed class HoldingSnapshotStore : MemorySnapshotStore
{
    public const string Config = """
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.holding"
        akka.persistence.snapshot-store.holding {
          class = "Konsole.Actors.Tests.Sessions.HoldingSnapshotStore, Konsole.Actors.Tests"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """;

    private static readonly ConcurrentDictionary<string, TaskCompletionSource> Holding = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, int> Held = new(StringComparer.Ordinal); // id -> saves that waited
    private static readonly ConcurrentDictionary<string, int> Made = new(StringComparer.Ordinal); // id -> of those, made since

    /// <summary>Saves of <paramref name="persistenceId"/> wait from now on, until <see cref="Release"/>.</summary>
    public static void HoldSavesOf(string persistenceId)
    {
        Held.TryRemove(persistenceId, out _);
        Made.TryRemove(persistenceId, out _);
        Holding[persistenceId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Saves of <paramref name="persistenceId"/> that have waited (or wait) since <see cref="HoldSavesOf"/>.</summary>
    public static int HeldSaves(string persistenceId) => Held.GetValueOrDefault(persistenceId);

    /// <summary>Saves of <paramref name="persistenceId"/> that waited and have been made since.</summary>
    public static int HeldSavesMade(string persistenceId) => Made.GetValueOrDefault(persistenceId);

    /// <summary>The held saves of <paramref name="persistenceId"/> are made, and later ones no longer wait.</summary>
    public static void Release(string persistenceId)
    {
        if (Holding.TryRemove(persistenceId, out var held))
            held.SetResult();
    }

    public static void ReleaseAll()
    {
        foreach (var id in Holding.Keys)
            Release(id);
    }

    protected override async Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken)
    {
        if (!Holding.TryGetValue(metadata.PersistenceId, out var held))
        {
            await base.SaveAsync(metadata, snapshot, cancellationToken);
            return;
        }
        Held.AddOrUpdate(metadata.PersistenceId, 1, (_, n) => n + 1);
        await held.Task;
        await base.SaveAsync(metadata, snapshot, cancellationToken);
        Made.AddOrUpdate(metadata.PersistenceId, 1, (_, n) => n + 1);
    }
}
