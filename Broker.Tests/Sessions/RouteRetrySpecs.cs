using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class RouteRetrySpecs
{
    private const long MovedAfter = 3_000;

    [Fact]
    public void Nothing_is_due_while_no_node_left()
    {
        long done = 0;
        Assert.Equal(0, RouteRetry.Cutoff(0, MovedAfter, 100_000, ref done));
    }

    [Fact]
    public void Nothing_is_due_before_the_shards_of_the_node_that_left_can_be_reached()
    {
        long done = 0;
        Assert.Equal(0, RouteRetry.Cutoff(10_000, MovedAfter, 12_999, ref done));
        Assert.Equal(0, done);
    }

    [Fact]
    public void Once_due_publishes_that_waited_are_routed_again_once_per_departure()
    {
        long done = 0;
        // Due at 13 s: everything that started before 12.5 s (it waited at least MinWaitMs).
        Assert.Equal(13_000 - RouteRetry.MinWaitMs, RouteRetry.Cutoff(10_000, MovedAfter, 13_000, ref done));
        Assert.Equal(0, RouteRetry.Cutoff(10_000, MovedAfter, 14_000, ref done));

        // The next departure is due again.
        Assert.Equal(23_000 - RouteRetry.MinWaitMs, RouteRetry.Cutoff(20_000, MovedAfter, 23_000, ref done));
    }

    [Fact]
    public void Publishes_that_started_after_the_shards_moved_are_not_routed_again()
    {
        // Asked long after the departure (a connection that first swept later): only what started before the shards
        // moved may have been lost with the node.
        long done = 0;
        Assert.Equal(13_000, RouteRetry.Cutoff(10_000, MovedAfter, 60_000, ref done));
    }

    [Fact]
    public void Expired_publishes_come_back_in_the_order_they_came()
    {
        var acks = new AckCollector<int>();
        for (var i = 1; i <= 50; i++)
        {
            acks.Expect(i, startedAtMs: 1);
        }

        for (var i = 2; i <= 50; i += 3)
        {
            acks.OnRouted(i, 0, out _); // completes and frees dictionary slots that later entries reuse
        }

        for (var i = 51; i <= 60; i++)
        {
            acks.Expect(i, startedAtMs: 1);
        }

        var waiting = acks.RemoveStartedBefore(2)!;
        Assert.Equal(waiting.Order().ToList(), waiting);
    }

    [Fact]
    public void Routings_may_overtake_lost_ones_while_a_member_is_unreachable_or_until_two_sweeps_after_the_shards_moved()
    {
        const long sweep = 1_000;
        Assert.False(RouteRetry.InTrouble(0, MovedAfter, anyUnreachable: false, sweep, 100_000));
        Assert.True(RouteRetry.InTrouble(0, MovedAfter, anyUnreachable: true, sweep, 100_000));
        Assert.True(RouteRetry.InTrouble(10_000, MovedAfter, anyUnreachable: false, sweep, 10_000)); // just downed
        Assert.True(RouteRetry.InTrouble(10_000, MovedAfter, anyUnreachable: false, sweep, 14_999));
        Assert.False(RouteRetry.InTrouble(10_000, MovedAfter, anyUnreachable: false, sweep, 15_000)); // the sweeps have routed again
    }
}
