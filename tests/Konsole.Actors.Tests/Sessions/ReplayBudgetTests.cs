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

    [Fact]
    public void A_session_that_runs_a_prompt_keeps_its_events_and_the_next_oldest_gives_up_instead()
    {
        var budget = new ReplayBudget(maxBytes: 100);
        budget.Held("a", 60);
        budget.Held("b", 30);

        Assert.Equal(["a"], budget.Held("c", 30)); // a is asked first...
        Assert.Equal(["b"], budget.Held("a", 60, running: true)); // ...but runs a prompt, so it keeps them: b gives up instead
        Assert.Empty(budget.Held("b", 0));
        Assert.Empty(budget.Held("c", 50)); // over, with only a running one besides: nobody to ask, no loop
        Assert.Equal(["c"], budget.Held("a", 70)); // its prompt ended: it counts again, and c, the oldest keeping any, gives up
    }
}
