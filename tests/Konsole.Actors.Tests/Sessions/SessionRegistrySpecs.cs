using Akka.Actor;
using Akka.Persistence;
using Konsole.Actors.Durability;
using Konsole.Actors.Sessions;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Sessions.SessionRegistryProtocol;

namespace Konsole.Actors.Tests.Sessions;

/// <summary>The session registry alone, a probe as its manager, on the in-memory journal and snapshot store.</summary>
public sealed class SessionRegistrySpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 0)
{
    private const string PersistenceId = "konsole-sessions";
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Keeps_only_its_latest_snapshot_so_a_host_that_opens_and_closes_sessions_all_day_does_not_fill_its_database()
    {
        var (registry, _) = await StartAsync();

        // 1,000 writes (500 sessions opened and closed): a snapshot at #500 and one at #1000, each of every closed id (up to
        // 10,000 of them). Each one before the latest is of no use once the latest is saved, and was kept for ever.
        for (var i = 0; i < 500; i++)
        {
            var id = $"chat-{i:D12}";
            await registry.Ask<SessionRecorded>(new RecordOpened(new SessionRegistered(id, SessionType.Chat, null)), Ask);
            await registry.Ask<CloseRecorded>(new RecordClosed(id), Ask);
        }

        var store = Persistence.Instance.Apply(Sys).SnapshotStoreFor(null);
        await AwaitAssertAsync(async () => Assert.Equal(1000, (await LoadAsync(store, SnapshotSelectionCriteria.Latest))?.Metadata.SequenceNr), Ask);
        await AwaitAssertAsync(async () => Assert.Null(await LoadAsync(store, new SnapshotSelectionCriteria(999))), Ask);

        // Read back from what is left, nothing is missing.
        await registry.GracefulStop(Ask);
        var (_, recovered) = await StartAsync();
        Assert.Empty(recovered.Open);
        Assert.Equal(Enumerable.Range(0, 500).Select(i => $"chat-{i:D12}"), recovered.Closed);
    }

    /// <summary>A registry under a probe that stands in as its manager, and what it read back from the journal.</summary>
    private async Task<(IActorRef Registry, RegistryRecovered Recovered)> StartAsync()
    {
        var parent = CreateTestProbe();
        var registry = Sys.ActorOf(ForwardingParent.Props(SessionRegistry.Props(firstStart: true), parent.Ref));
        return (registry, await parent.ExpectMsgAsync<RegistryRecovered>(Ask));
    }

    private static async Task<SelectedSnapshot?> LoadAsync(IActorRef store, SnapshotSelectionCriteria criteria) =>
        (await store.Ask<LoadSnapshotResult>(new LoadSnapshot(PersistenceId, criteria, long.MaxValue), Ask)).Snapshot;
}
