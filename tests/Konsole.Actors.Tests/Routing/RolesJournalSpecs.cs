using Akka.Actor;
using Akka.Persistence;
using Konsole.Actors.Durability;
using Konsole.Actors.Routing;
using Konsole.Testing;
using Xunit.Abstractions;
using static Konsole.Actors.Routing.RoleRouterProtocol;
using static Konsole.Actors.Routing.RolesJournalProtocol;

namespace Konsole.Actors.Tests.Routing;

/// <summary>The roles' journal alone, a probe as its router, on the in-memory journal.</summary>
public sealed class RolesJournalSpecs(ITestOutputHelper output) : KonsoleSpec(output, accounts: 0)
{
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);
    private static readonly RoleAssignment Configured = new("alpha", "beta");

    [Fact]
    public async Task Keeps_only_the_last_assignment_so_a_host_swapped_all_day_neither_fills_its_database_nor_reads_it_all_back()
    {
        var (journal, _) = await StartAsync();

        for (var i = 0; i < 100; i++)
            journal.Tell(new RecordRoles(i % 2 == 0 ? new RoleAssignment("beta", "alpha") : Configured));
        journal.Tell(new RecordRoles(new RoleAssignment("beta", "beta")));

        // Only the last one is of use: every swap before it was kept (and read back at each start) for ever. The journal holds
        // one row after each write, so it is awaited to be the last one: stopping sooner drops the writes still waiting.
        await AwaitAssertAsync(async () => Assert.Equal([new RoleAssignment("beta", "beta")], await ReadRowsAsync()), Ask);
        await journal.GracefulStop(Ask);
        var (_, recovered) = await StartAsync();
        Assert.Equal(new RoleAssignment("beta", "beta"), recovered.Roles);
    }

    [Fact]
    public async Task Stopping_it_records_the_roles_it_is_given_after_those_before_them_and_without_roles_writes_nothing()
    {
        var (journal, _) = await StartAsync();
        journal.Tell(new RecordRoles(new RoleAssignment("beta", "alpha")));
        journal.Tell(new StopJournal(new RoleAssignment("beta", "beta")));
        Watch(journal);
        await ExpectTerminatedAsync(journal, Ask);
        Assert.Equal([new RoleAssignment("beta", "beta")], await ReadRowsAsync());

        // As the router stops before it has read the roles back: what it holds then is only the configuration's.
        (journal, var recovered) = await StartAsync();
        journal.Tell(new StopJournal(null));
        Watch(journal);
        await ExpectTerminatedAsync(journal, Ask);
        Assert.Equal(new RoleAssignment("beta", "beta"), recovered.Roles);
        Assert.Equal([new RoleAssignment("beta", "beta")], await ReadRowsAsync());
    }

    /// <summary>A journal under a probe that stands in as its router, and what it read back.</summary>
    private async Task<(IActorRef Journal, RolesRecovered Recovered)> StartAsync()
    {
        var parent = CreateTestProbe();
        var journal = Sys.ActorOf(ForwardingParent.Props(RolesJournal.Props(firstStart: true, Configured), parent.Ref));
        return (journal, await parent.ExpectMsgAsync<RolesRecovered>(Ask));
    }

    /// <summary>The assignments the journal would replay for the roles.</summary>
    private async Task<List<RoleAssignment>> ReadRowsAsync()
    {
        var reader = CreateTestProbe();
        Persistence.Instance.Apply(Sys).JournalFor(null).Tell(new ReplayMessages(0, long.MaxValue, long.MaxValue, "konsole-roles", reader.Ref));
        var rows = new List<RoleAssignment>();
        while (await reader.ReceiveOneAsync(Ask) is ReplayedMessage { Persistent.Payload: RolesAssigned e })
            rows.Add(new RoleAssignment(e.Dashboard, e.QuickTurn));
        return rows;
    }
}
