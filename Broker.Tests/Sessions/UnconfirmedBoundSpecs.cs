using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class UnconfirmedBoundSpecs
{
    private const long Hold = 5_000;
    private const long Moved = 3_000;

    [Theory]
    [InlineData(true, QueueFullPolicy.Backpressure, true)]
    [InlineData(true, QueueFullPolicy.DropNewest, true)]
    [InlineData(true, QueueFullPolicy.DropOldest, true)]
    [InlineData(false, QueueFullPolicy.Backpressure, true)]
    [InlineData(false, QueueFullPolicy.DropNewest, false)] // 3.1.1 under a drop policy waits for DurableAckTimeout
    [InlineData(false, QueueFullPolicy.DropOldest, false)]
    public void The_bound_should_apply_to_v5_always_and_to_3_1_1_under_backpressure(bool v5, QueueFullPolicy policy, bool applies) =>
        Assert.Equal(applies, UnconfirmedBound.Applies(v5, policy, anyUnreachable: false, lastLeftAtMs: 0, Moved, Hold, nowMs: 100_000));

    [Fact]
    public void The_bound_should_wait_while_a_node_is_unreachable_or_its_shards_are_moving()
    {
        Assert.False(UnconfirmedBound.Applies(true, QueueFullPolicy.Backpressure, anyUnreachable: true, 0, Moved, Hold, 100_000));
        const long leftAt = 50_000;
        Assert.False(UnconfirmedBound.Applies(true, QueueFullPolicy.Backpressure, false, leftAt, Moved, Hold, leftAt + Moved + Hold - 1));
        Assert.True(UnconfirmedBound.Applies(true, QueueFullPolicy.Backpressure, false, leftAt, Moved, Hold, leftAt + Moved + Hold));
    }

    [Fact]
    public void Publishers_should_check_four_times_per_hold_between_50_ms_and_a_second()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(50), UnconfirmedBound.CheckEvery(100));
        Assert.Equal(TimeSpan.FromMilliseconds(250), UnconfirmedBound.CheckEvery(1_000));
        Assert.Equal(TimeSpan.FromSeconds(1), UnconfirmedBound.CheckEvery(5_000));
    }
}
