using Broker.Routing;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class SeenOriginsSpecs
{
    [Fact]
    public void A_message_is_known_by_publisher_stream_and_sequence_number()
    {
        var seen = new SeenOrigins();
        seen.Record("p1", new MessageOrigin(7, 10, 10));

        Assert.True(seen.Contains("p1", new MessageOrigin(7, 10, 12)));
        Assert.False(seen.Contains("p1", new MessageOrigin(7, 11, 10)));
        Assert.False(seen.Contains("p1", new MessageOrigin(8, 10, 10))); // another life of the publisher's session
        Assert.False(seen.Contains("p2", new MessageOrigin(7, 10, 10)));
    }

    [Fact]
    public void Numbers_below_the_low_water_mark_are_forgotten_beyond_the_newest_few()
    {
        var seen = new SeenOrigins();
        var total = SeenOrigins.KeepRecent + 20;
        for (var seq = 1; seq <= total; seq++)
        {
            seen.Record("p", new MessageOrigin(1, seq, seq)); // one message in flight at a time
        }

        var kept = Assert.Single(seen.ToList()).Seqs;
        Assert.Equal(Enumerable.Range(total - SeenOrigins.KeepRecent + 1, SeenOrigins.KeepRecent).Select(i => (long)i), kept);
        Assert.False(seen.Contains("p", new MessageOrigin(1, 1, total)));
        Assert.True(seen.Contains("p", new MessageOrigin(1, total, total)));
    }

    [Fact]
    public void Numbers_that_may_still_be_routed_again_are_kept_however_many()
    {
        var seen = new SeenOrigins();

        // Message 1 is still unsettled at its publisher while 2..40 go by (out of order across topics).
        for (var seq = 40; seq >= 1; seq--)
        {
            seen.Record("p", new MessageOrigin(1, seq, 1));
        }

        Assert.Equal(40, Assert.Single(seen.ToList()).Seqs.Count);
        Assert.True(seen.Contains("p", new MessageOrigin(1, 1, 1)));

        // Once the publisher says nothing below 40 can come again, only the newest few stay.
        seen.Record("p", new MessageOrigin(1, 41, 40));
        Assert.Equal(SeenOrigins.KeepRecent, Assert.Single(seen.ToList()).Seqs.Count);
        Assert.True(seen.Contains("p", new MessageOrigin(1, 40, 40)));
    }

    [Fact]
    public void The_origin_heard_from_least_recently_goes_first_when_full()
    {
        var seen = new SeenOrigins();
        for (var p = 0; p < SeenOrigins.MaxOrigins; p++)
        {
            seen.Record($"p{p}", new MessageOrigin(1, 1, 1));
        }

        seen.Record("p0", new MessageOrigin(1, 2, 1)); // p0 heard again: p1 is now the oldest
        seen.Record("new", new MessageOrigin(1, 1, 1));

        Assert.Equal(SeenOrigins.MaxOrigins, seen.Count);
        Assert.True(seen.Contains("p0", new MessageOrigin(1, 1, 1)));
        Assert.False(seen.Contains("p1", new MessageOrigin(1, 1, 1)));
        Assert.True(seen.Contains("new", new MessageOrigin(1, 1, 1)));
    }

    [Fact]
    public void A_restored_memory_answers_as_the_one_it_was_taken_from()
    {
        var seen = new SeenOrigins();
        seen.Record("a", new MessageOrigin(1, 5, 3));
        seen.Record("b", new MessageOrigin(2, 9, 9));
        seen.Record("a", new MessageOrigin(1, 3, 3));

        var restored = new SeenOrigins();
        restored.Restore(seen.ToList());

        Assert.Equal(seen.ToList().Select(o => (o.Publisher, o.Stream, o.LowWater, string.Join(",", o.Seqs))),
            restored.ToList().Select(o => (o.Publisher, o.Stream, o.LowWater, string.Join(",", o.Seqs))));
        Assert.True(restored.Contains("a", new MessageOrigin(1, 3, 3)));
        Assert.True(restored.Contains("b", new MessageOrigin(2, 9, 9)));
        Assert.Equal("b", restored.ToList()[0].Publisher); // least recently heard first
    }
}
