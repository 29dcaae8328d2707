using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;

namespace Broker.Tests.Sessions;

public sealed class MessageQueueSpecs
{
    [Fact]
    public void Queue_should_dequeue_in_arrival_order()
    {
        var queue = new MessageQueue(10);
        foreach (var p in new[] { "a", "b", "c" })
        {
            Assert.Null(queue.Enqueue(Queued(p)));
        }

        Assert.Equal(3, queue.Count);
        Assert.True(queue.TryPeek(out var head));
        Assert.Equal("a", PayloadOf(head));
        Assert.Equal(["a", "b", "c"], new[] { queue.Dequeue(), queue.Dequeue(), queue.Dequeue() }.Select(PayloadOf));
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.Dropped);
    }

    [Fact]
    public void Full_queue_should_drop_the_oldest_and_count_each_drop()
    {
        var queue = new MessageQueue(3);
        var dropped = new List<string>();
        for (var i = 1; i <= 7; i++)
        {
            if (queue.Enqueue(Queued("m" + i)) is { } d)
            {
                dropped.AddRange(d.Select(PayloadOf));
            }
        }

        Assert.Equal(3, queue.Count);
        Assert.Equal(4, queue.Dropped);
        Assert.Equal(["m1", "m2", "m3", "m4"], dropped);
        Assert.Equal(["m5", "m6", "m7"], queue.Items.Select(PayloadOf));
    }

    [Fact]
    public void Empty_queue_should_refuse_peek_and_dequeue()
    {
        var queue = new MessageQueue(1);
        Assert.False(queue.TryPeek(out _));
        Assert.Throws<InvalidOperationException>(() => queue.Dequeue());
    }

    [Fact]
    public void Clear_should_empty_the_queue_but_keep_the_drop_count()
    {
        var queue = new MessageQueue(1);
        queue.Enqueue(Queued("a"));
        queue.Enqueue(Queued("b"));
        queue.Clear();
        Assert.Equal(0, queue.Count);
        Assert.Equal(1, queue.Dropped);
        Assert.Null(queue.Enqueue(Queued("c")));
    }

    [Fact]
    public void A_queue_that_does_not_drop_takes_beyond_its_mark_and_says_it_is_full()
    {
        var queue = new MessageQueue(4, dropOldest: false);
        for (var i = 1; i <= 6; i++)
        {
            Assert.Null(queue.Enqueue(Queued("m" + i)));
        }

        Assert.Equal(6, queue.Count);
        Assert.True(queue.IsFull);
        Assert.False(queue.IsBelowLowWater);
        queue.Dequeue();
        queue.Dequeue();
        queue.Dequeue();
        Assert.False(queue.IsFull);
        Assert.True(queue.IsBelowLowWater); // 3 = three quarters of 4
    }

    [Fact]
    public void Payload_bytes_are_a_second_bound_and_one_large_message_still_passes()
    {
        var queue = new MessageQueue(100, maxBytes: 10);
        queue.Enqueue(Queued(new string('x', 25)));
        Assert.Equal(25, queue.Bytes);
        Assert.True(queue.IsFull);
        Assert.Equal([new string('x', 25)], queue.Enqueue(Queued("y1"))!.Select(PayloadOf)); // the large one goes, the new one stays
        Assert.Equal(2, queue.Bytes);
        Assert.False(queue.IsFull);
        queue.Dequeue();
        Assert.Equal(0, queue.Bytes);
    }
}
