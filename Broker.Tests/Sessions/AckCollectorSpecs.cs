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

    [Fact]
    public void Held_publishes_should_be_counted_once_until_they_complete_or_are_given_up()
    {
        var acks = new AckCollector<string>();
        var a = acks.Expect("a", startedAtMs: 100);
        var b = acks.Expect("b", startedAtMs: 100);
        acks.OnRouted(a, 2, out _);
        acks.OnRouted(b, 1, out _);

        Assert.True(acks.MarkHeld(a, 200, out var held));
        Assert.Equal("a", held);
        Assert.False(acks.MarkHeld(a, 300, out _)); // a second queue holding it too
        Assert.True(acks.MarkHeld(b, 300, out _));
        Assert.False(acks.MarkHeld(12345, 300, out _));
        Assert.Equal(2, acks.HeldCount);

        Assert.False(acks.OnStored(a, out _));
        Assert.True(acks.OnStored(a, out _)); // both queues took it
        Assert.Equal(1, acks.HeldCount);
        Assert.Equal(["b"], acks.RemoveStartedBefore(1_000));
        Assert.Equal(0, acks.HeldCount);
    }

    [Fact]
    public void Publishes_a_session_did_not_confirm_within_the_hold_should_be_given_up_in_order_held_ones_after_a_grace()
    {
        const long hold = 2_000; // grace: min(hold, 1 s) + 0.5 s
        var acks = new AckCollector<string>();
        var slow = acks.Expect("slow", startedAtMs: 10_000);
        var held = acks.Expect("held", startedAtMs: 10_000);
        var fresh = acks.Expect("fresh", startedAtMs: 11_000);
        var early = acks.Expect("early", startedAtMs: 9_000);
        foreach (var id in new[] { slow, held, fresh, early })
        {
            acks.OnRouted(id, 1, out _);
        }

        acks.MarkHeld(held, 10_100, out _);

        Assert.Null(acks.RemoveUnconfirmed(10_999, hold));
        Assert.Equal(["slow", "early"], acks.RemoveUnconfirmed(12_000, hold)); // in the order they came
        Assert.Equal(["fresh"], acks.RemoveUnconfirmed(13_000, hold));
        Assert.Null(acks.RemoveUnconfirmed(13_599, hold)); // the full queue answers a held one itself at its hold
        Assert.Equal(["held"], acks.RemoveUnconfirmed(13_600, hold));
        Assert.Equal(0, acks.Count);
        Assert.Equal(0, acks.HeldCount);
        Assert.False(acks.OnStored(slow, out _)); // a late confirmation completes nothing
    }
}
