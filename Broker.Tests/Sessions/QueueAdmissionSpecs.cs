using Broker.Routing;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;

namespace Broker.Tests.Sessions;

/// <summary>The pure decisions of Sessions:QueueFullPolicy at a session's queue (SessionEntity.Flow.cs executes them).</summary>
public sealed class QueueAdmissionSpecs
{
    private static Deliver DeliverOf(string payload) =>
        new("c", Queued(payload).Message, null, null, Akka.Actor.ActorRefs.Nobody, 1);

    private static MessageQueue Fill(int capacity, int count, bool dropOldest = false)
    {
        var queue = new MessageQueue(capacity, dropOldest: dropOldest);
        for (var i = 0; i < count; i++)
        {
            queue.Enqueue(Queued("q" + i));
        }

        return queue;
    }

    [Fact]
    public void Backpressure_takes_below_the_mark_and_holds_at_it()
    {
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, 1000);
        Assert.Equal(Admission.Take, admission.Admit(Fill(4, 3), canHold: true));
        var full = Fill(4, 4);
        Assert.Equal(Admission.Hold, admission.Admit(full, canHold: true));
        Assert.True(admission.UnderPressure(full));
    }

    [Fact]
    public void Once_something_is_held_later_deliveries_wait_behind_it_in_order()
    {
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, 1000);
        var queue = Fill(4, 4);
        admission.Hold(DeliverOf("h1"), Queued("h1"), 0);
        queue.Dequeue(); // room again, but h1 came first
        Assert.Equal(Admission.Hold, admission.Admit(queue, canHold: true));
        admission.Hold(DeliverOf("h2"), Queued("h2"), 0);

        // 3 of 4 is the low-water mark: release in order until full again.
        Assert.True(admission.TryRelease(queue, out var first));
        queue.Enqueue(first.Message);
        Assert.Equal("h1", PayloadOf(first.Message));
        Assert.False(admission.TryRelease(queue, out _)); // full again
        Assert.Equal(1, admission.HeldCount);
    }

    [Fact]
    public void Release_waits_for_the_low_water_mark()
    {
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, 1000);
        var queue = Fill(8, 8);
        admission.Hold(DeliverOf("h1"), Queued("h1"), 0);
        queue.Dequeue(); // 7 of 8: below the high mark, above the low one (6)
        Assert.False(admission.TryRelease(queue, out _));
        queue.Dequeue();
        Assert.True(admission.TryRelease(queue, out _));
    }

    [Fact]
    public void A_hold_past_the_bound_refuses_everything_held_and_what_comes_until_the_queue_drains()
    {
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, 1000);
        var queue = Fill(8, 8);
        admission.Hold(DeliverOf("h1"), Queued("h1"), 100);
        admission.Hold(DeliverOf("h2"), Queued("h2"), 900);
        Assert.Null(admission.Expire(1099));
        Assert.Equal(["h1", "h2"], admission.Expire(1100)!.Select(h => PayloadOf(h.Message)));
        Assert.Equal(Admission.Refuse, admission.Admit(queue, canHold: true));
        queue.Dequeue();
        Assert.Equal(Admission.Refuse, admission.Admit(queue, canHold: true)); // 6 of 8 is low water...
        queue.Dequeue();
        Assert.Equal(Admission.Take, admission.Admit(queue, canHold: true)); // ...reached: taking again
        Assert.False(admission.Refusing);
    }

    [Fact]
    public void A_delivery_nobody_waits_on_is_taken_up_to_twice_the_bound_then_counted_as_overflow()
    {
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, 1000);
        Assert.Equal(Admission.Take, admission.Admit(Fill(4, 7), canHold: false));
        Assert.Equal(Admission.Overflow, admission.Admit(Fill(4, 8), canHold: false));
    }

    [Fact]
    public void Drop_policies_never_hold()
    {
        var full = Fill(4, 4, dropOldest: true);
        Assert.Equal(Admission.Take, new QueueAdmission(QueueFullPolicy.DropOldest, 1000).Admit(full, canHold: true));
        Assert.Equal(Admission.DropNewest, new QueueAdmission(QueueFullPolicy.DropNewest, 1000).Admit(full, canHold: true));
        Assert.False(new QueueAdmission(QueueFullPolicy.DropNewest, 1000).UnderPressure(full));
    }
}
