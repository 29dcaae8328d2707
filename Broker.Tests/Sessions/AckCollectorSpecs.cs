using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class AckCollectorSpecs
{
    [Fact]
    public void Routed_before_stored_should_complete_on_the_last_confirmation()
    {
        var acks = new AckCollector<string>();
        var id = acks.Expect("pub-1");

        Assert.False(acks.OnRouted(id, 2, out _));
        Assert.False(acks.OnStored(id, out _));
        Assert.True(acks.OnStored(id, out var state));
        Assert.Equal("pub-1", state);
        Assert.Equal(0, acks.Count);
    }

    [Fact]
    public void Stored_before_routed_should_wait_for_the_routing_result()
    {
        var acks = new AckCollector<string>();
        var id = acks.Expect("pub-1");

        Assert.False(acks.OnStored(id, out _));
        Assert.False(acks.OnStored(id, out _));
        Assert.Equal(1, acks.Count);
        Assert.True(acks.OnRouted(id, 2, out var state));
        Assert.Equal("pub-1", state);
        Assert.Equal(0, acks.Count);
    }

    [Fact]
    public void Interleaved_confirmations_should_complete_exactly_once()
    {
        var acks = new AckCollector<string>();
        var id = acks.Expect("pub-1");

        Assert.False(acks.OnStored(id, out _));
        Assert.False(acks.OnRouted(id, 3, out _));
        Assert.False(acks.OnStored(id, out _));
        Assert.True(acks.OnStored(id, out _));
        Assert.False(acks.OnStored(id, out _)); // late duplicate: already complete
        Assert.False(acks.OnRouted(id, 1, out _));
    }

    [Fact]
    public void No_subscribers_should_complete_on_routing()
    {
        var acks = new AckCollector<int>();
        var id = acks.Expect(42);
        Assert.True(acks.OnRouted(id, 0, out var state));
        Assert.Equal(42, state);
    }

    [Fact]
    public void Publishes_should_be_tracked_independently()
    {
        var acks = new AckCollector<string>();
        var a = acks.Expect("a");
        var b = acks.Expect("b");
        Assert.NotEqual(a, b);

        Assert.False(acks.OnRouted(a, 1, out _));
        Assert.True(acks.OnRouted(b, 0, out var doneB));
        Assert.Equal("b", doneB);
        Assert.True(acks.Contains(s => s == "a"));
        Assert.False(acks.Contains(s => s == "b"));
        Assert.True(acks.OnStored(a, out var doneA));
        Assert.Equal("a", doneA);
        Assert.False(acks.OnStored(12345, out _));
    }

    [Fact]
    public void Publishes_waiting_past_the_cutoff_should_be_given_up_and_late_confirmations_ignored()
    {
        var acks = new AckCollector<ushort>();
        var old = acks.Expect(1, startedAtMs: 1_000);
        var fresh = acks.Expect(2, startedAtMs: 5_000);
        acks.OnRouted(old, 1, out _);

        Assert.Equal([(ushort)1], acks.RemoveStartedBefore(2_000));
        Assert.Null(acks.RemoveStartedBefore(2_000));
        Assert.Equal(1, acks.Count);

        // The late confirmation of the abandoned publish completes nothing.
        Assert.False(acks.OnStored(old, out _));
        Assert.True(acks.OnRouted(fresh, 0, out var done));
        Assert.Equal(2, done);
    }
}
