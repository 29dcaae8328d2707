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
                dropped.Add(PayloadOf(d));
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
}
