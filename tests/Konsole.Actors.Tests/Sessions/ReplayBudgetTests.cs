using Konsole.Actors.Sessions;

namespace Konsole.Actors.Tests.Sessions;

public sealed class ReplayBudgetTests
{
    [Fact]
    public void Past_its_bound_the_sessions_that_reported_the_longest_ago_give_up_theirs_never_the_one_reporting()
    {
        var budget = new ReplayBudget(maxBytes: 100);

        Assert.Empty(budget.Held("a", 40));
        Assert.Empty(budget.Held("b", 40));
        Assert.Empty(budget.Held("a", 50)); // a reports again: now b is the oldest
        Assert.Equal(["b"], budget.Held("c", 30)); // 120: b goes first
        Assert.Equal(80, budget.Total);
        Assert.Equal(["a", "c"], budget.Held("d", 500)); // over the bound alone: all others go, it stays
        Assert.Equal(500, budget.Total);
        budget.Forget("d");
        Assert.Equal(0, budget.Total);
    }
}
