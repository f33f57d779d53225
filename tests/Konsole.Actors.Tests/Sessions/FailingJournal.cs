using System.Collections.Concurrent;
using System.Collections.Immutable;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Konsole.Actors.Durability;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>
/// The in-memory journal, except that writes for the persistence ids a test names fail (as a database that times out
/// does) until the test heals them, or (event id reservations) are acknowledged but never land, as a write still on its
/// way when the host was killed.
/// </summary>
public sealed class FailingJournal : MemoryJournal
{
    public const string Config = """
        akka.persistence.journal.plugin = "akka.persistence.journal.failing"
        akka.persistence.journal.failing {
          class = "Konsole.Actors.Tests.Sessions.FailingJournal, Konsole.Actors.Tests"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """;

    private static readonly ConcurrentDictionary<string, int> Failing = new(StringComparer.Ordinal); // id -> writes failed
    private static readonly ConcurrentDictionary<string, bool> FailingOnce = new(StringComparer.Ordinal); // ids whose next write alone fails
    private static readonly ConcurrentDictionary<string, int> Written = new(StringComparer.Ordinal); // id -> writes that succeeded
    private static readonly ConcurrentDictionary<string, int> FailingReads = new(StringComparer.Ordinal); // id -> reads failed
    private static readonly ConcurrentDictionary<string, int> Losing = new(StringComparer.Ordinal); // id -> reservations lost
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> Holding = new(StringComparer.Ordinal); // id -> held reservations
    private static readonly ConcurrentDictionary<string, int> Held = new(StringComparer.Ordinal); // id -> reservation writes that waited

    /// <param name="once">Only the next write fails: the journal heals itself as it fails it.</param>
    public static void FailWritesOf(string persistenceId, bool once = false)
    {
        Failing[persistenceId] = 0;
        if (once)
            FailingOnce[persistenceId] = true;
    }

    /// <summary>Writes of <paramref name="persistenceId"/> failed so far, since <see cref="FailWritesOf"/>.</summary>
    public static int Failures(string persistenceId) => Failing.GetValueOrDefault(persistenceId);

    /// <summary>Writes of <paramref name="persistenceId"/> that succeeded, in this test run.</summary>
    public static int Writes(string persistenceId) => Written.GetValueOrDefault(persistenceId);

    /// <summary>Reading <paramref name="persistenceId"/> back fails too (as with a database that is down), until healed.</summary>
    public static void FailReadsOf(string persistenceId) => FailingReads[persistenceId] = 0;

    /// <summary>Reads of <paramref name="persistenceId"/> failed so far, since <see cref="FailReadsOf"/>.</summary>
    public static int ReadFailures(string persistenceId) => FailingReads.GetValueOrDefault(persistenceId);

    /// <summary>The event id reservations <paramref name="persistenceId"/> writes are acknowledged but kept nowhere, until healed.</summary>
    public static void LoseEventIdReservationsOf(string persistenceId) => Losing[persistenceId] = 0;

    /// <summary>The event id reservations <paramref name="persistenceId"/> writes wait, unanswered, until <see cref="FailHeld"/> or <see cref="ReleaseHeld"/>.</summary>
    public static void HoldEventIdReservationsOf(string persistenceId)
    {
        Held.TryRemove(persistenceId, out _);
        Holding[persistenceId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The held reservations of <paramref name="persistenceId"/> fail, as a database that timed out.</summary>
    public static void FailHeld(string persistenceId)
    {
        if (Holding.TryRemove(persistenceId, out var held))
            held.SetException(new TimeoutException($"journal write for {persistenceId} timed out (test fault)"));
    }

    /// <summary>Reservation writes of <paramref name="persistenceId"/> that have waited (or wait) since <see cref="HoldEventIdReservationsOf"/>.</summary>
    public static int HeldWrites(string persistenceId) => Held.GetValueOrDefault(persistenceId);

    /// <summary>The held reservations of <paramref name="persistenceId"/> are written after all.</summary>
    public static void ReleaseHeld(string persistenceId)
    {
        if (Holding.TryRemove(persistenceId, out var held))
            held.SetResult();
    }

    /// <summary>Writes (and reads) of <paramref name="persistenceId"/> succeed again; returns how many writes failed.</summary>
    public static int Heal(string persistenceId)
    {
        FailingReads.TryRemove(persistenceId, out _);
        Losing.TryRemove(persistenceId, out _);
        FailingOnce.TryRemove(persistenceId, out _);
        return Failing.TryRemove(persistenceId, out var failed) ? failed : 0;
    }

    /// <summary>Every fault a test set is gone (a test that failed before healing its own must not fail those after it).</summary>
    public static void HealAll()
    {
        Failing.Clear();
        FailingOnce.Clear();
        FailingReads.Clear();
        Losing.Clear();
        Held.Clear();
        foreach (var id in Holding.Keys)
            FailHeld(id);
    }

    public override Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        if (!FailingReads.ContainsKey(persistenceId))
            return base.ReadHighestSequenceNrAsync(persistenceId, fromSequenceNr, cancellationToken);
        FailingReads.AddOrUpdate(persistenceId, 1, (_, n) => n + 1);
        return Task.FromException<long>(new TimeoutException($"journal read for {persistenceId} timed out (test fault)"));
    }

    protected override async Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToList();
        foreach (var write in writes.Where(w => Failing.ContainsKey(w.PersistenceId)))
        {
            Failing.AddOrUpdate(write.PersistenceId, 1, (_, n) => n + 1);
            if (FailingOnce.TryRemove(write.PersistenceId, out _))
                Failing.TryRemove(write.PersistenceId, out _);
            throw new TimeoutException($"journal write for {write.PersistenceId} timed out (test fault)");
        }
        foreach (var write in writes.Where(w => Holding.ContainsKey(w.PersistenceId) && IsReservation(w)))
        {
            if (!Holding.TryGetValue(write.PersistenceId, out var held))
                continue;
            Held.AddOrUpdate(write.PersistenceId, 1, (_, n) => n + 1);
            await held.Task;
        }
        var lost = writes.Where(w => Losing.ContainsKey(w.PersistenceId) && IsReservation(w)).ToList();
        foreach (var write in lost)
            Losing.AddOrUpdate(write.PersistenceId, 1, (_, n) => n + 1);
        foreach (var write in writes)
            Written.AddOrUpdate(write.PersistenceId, 1, (_, n) => n + 1);
        if (lost.Count == 0)
            return await base.WriteMessagesAsync(writes, cancellationToken);
        await base.WriteMessagesAsync(writes.Except(lost), cancellationToken);
        return null!; // every write acknowledged, the lost ones kept nowhere
    }

    private static bool IsReservation(AtomicWrite write) =>
        ((IImmutableList<IPersistentRepresentation>)write.Payload).All(e => e.Payload is EventIdsReserved);
}
