using System.Text;
using Konsole.Actors.Sessions;

namespace Konsole.Actors.Tests.Sessions;

public sealed class EventLogTests
{
    [Fact]
    public void It_numbers_on_from_where_it_starts_and_keeps_the_latest_capacity_events()
    {
        var log = new EventLog(capacity: 5, startAfter: 100);
        foreach (var n in Enumerable.Range(0, 3))
            log.Append("p", "assistant", Encoding.UTF8.GetBytes($"{n}"), endsPrompt: false);

        Assert.Equal([101L, 102, 103], log.After(0).Select(e => e.Id));
        Assert.Equal(101, log.FirstAvailable);

        foreach (var n in Enumerable.Range(3, 5))
            log.Append("p", "assistant", Encoding.UTF8.GetBytes($"{n}"), endsPrompt: false);

        Assert.Equal(108, log.LastId);
        Assert.Equal(104, log.FirstAvailable);
        Assert.Equal(["3", "4", "5", "6", "7"], log.After(0).Select(e => e.Text));
        Assert.Equal(["5", "6", "7"], log.After(105).Select(e => e.Text));
    }

    [Fact]
    public void After_the_latest_id_or_beyond_it_gives_nothing_up_to_long_max()
    {
        var log = new EventLog(capacity: 5);
        foreach (var n in Enumerable.Range(0, 3))
            log.Append("p", "assistant", Encoding.UTF8.GetBytes($"{n}"), endsPrompt: false);

        Assert.Empty(log.After(3));
        Assert.Empty(log.After(4));
        Assert.Empty(log.After(long.MaxValue));
        Assert.Empty(new EventLog(capacity: 5).After(long.MaxValue));
    }

    [Fact]
    public void It_grows_with_what_it_holds_up_to_its_capacity()
    {
        var log = new EventLog(capacity: 40);
        foreach (var n in Enumerable.Range(1, 100))
            log.Append("p", "assistant", Encoding.UTF8.GetBytes($"{n}"), endsPrompt: false);

        Assert.Equal(Enumerable.Range(61, 40).Select(n => $"{n}"), log.After(0).Select(e => e.Text));
        Assert.Equal(Enumerable.Range(61, 40).Select(n => (long)n), log.After(0).Select(e => e.Id));
    }

    [Fact]
    public void It_keeps_no_more_bytes_than_its_bound_but_always_the_latest_event()
    {
        var log = new EventLog(capacity: 100, maxBytes: 350);
        foreach (var n in Enumerable.Range(1, 10))
            log.Append("p", "assistant", new byte[100], endsPrompt: false);

        Assert.Equal([8L, 9, 10], log.After(0).Select(e => e.Id));
        Assert.Equal(300, log.Bytes);

        log.Append("p", "assistant", new byte[1000], endsPrompt: false); // alone over the bound: kept by itself

        Assert.Equal(11, log.FirstAvailable);
        Assert.Equal([1000], log.After(0).Select(e => e.Data.Length));
        foreach (var n in Enumerable.Range(1, 3))
            log.Append("p", "assistant", new byte[100], endsPrompt: false);
        Assert.Equal([12L, 13, 14], log.After(0).Select(e => e.Id));
        Assert.Equal(300, log.Bytes);
    }

    [Fact]
    public void Events_given_way_by_bytes_and_by_count_alike_keep_the_order_across_its_growth()
    {
        var log = new EventLog(capacity: 40, maxBytes: 30 * 3);
        foreach (var n in Enumerable.Range(100, 200))
            log.Append("p", "assistant", Encoding.UTF8.GetBytes($"{n}"), endsPrompt: false);

        Assert.Equal(Enumerable.Range(270, 30).Select(n => $"{n}"), log.After(0).Select(e => e.Text));
        Assert.Equal(171, log.FirstAvailable);
        Assert.Equal(["298", "299"], log.After(198).Select(e => e.Text));
    }
}
