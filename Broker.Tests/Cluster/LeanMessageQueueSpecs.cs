using System.Reflection;
using Akka.Actor;
using Broker.Cluster;

namespace Broker.Tests.Cluster;

/// <summary>
/// The actors' lock-free mailbox queue (<see cref="LeanMessageQueue"/>): many senders, one consumer, first in first
/// out per sender, nothing lost; and a consumed node lets go of the nodes after it, so that a dead node the collector
/// has promoted cannot keep the younger ones alive.
/// </summary>
public sealed class LeanMessageQueueSpecs
{
    private static Envelope Message(object m) => new(m, ActorRefs.NoSender);

    [Fact]
    public async Task Messages_of_many_senders_arrive_each_senders_in_order_and_none_lost()
    {
        const int senders = 4, each = 20_000;
        var queue = new LeanMessageQueue();
        var received = new List<(int Sender, int Seq)>(senders * each);
        using var done = new CancellationTokenSource();
        var consumer = Task.Run(() =>
        {
            while (received.Count < senders * each)
            {
                if (queue.TryDequeue(out var envelope))
                {
                    received.Add(((int, int))envelope.Message);
                }
                else if (done.IsCancellationRequested)
                {
                    break;
                }
            }
        });

        await Task.WhenAll(Enumerable.Range(0, senders).Select(s => Task.Run(() =>
        {
            for (var i = 0; i < each; i++)
            {
                queue.Enqueue(ActorRefs.Nobody, Message((s, i)));
            }
        })));
        done.CancelAfter(TimeSpan.FromSeconds(30));
        await consumer;

        Assert.Equal(senders * each, received.Count);
        foreach (var s in Enumerable.Range(0, senders))
        {
            Assert.Equal(Enumerable.Range(0, each), received.Where(r => r.Sender == s).Select(r => r.Seq));
        }

        Assert.False(queue.HasMessages);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void A_consumed_node_links_to_nothing_that_is_still_queued()
    {
        var queue = new LeanMessageQueue();
        var tail = typeof(LeanMessageQueue).GetField("_tail", BindingFlags.NonPublic | BindingFlags.Instance)!;
        queue.Enqueue(ActorRefs.Nobody, Message("a"));
        queue.Enqueue(ActorRefs.Nobody, Message("b"));
        queue.Enqueue(ActorRefs.Nobody, Message("c"));
        var stub = tail.GetValue(queue)!;
        var next = stub.GetType().GetField("Next")!;

        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal("a", first.Message);
        var consumedNext = next.GetValue(stub);
        Assert.Same(stub, consumedNext); // linked to itself: not to the node of "a" (now the stub), nor to "b"

        Assert.True(queue.HasMessages);
        Assert.True(queue.TryDequeue(out var second));
        Assert.True(queue.TryDequeue(out var third));
        Assert.Equal(["b", "c"], new[] { second.Message, third.Message });
        Assert.False(queue.HasMessages);
        Assert.False(queue.TryDequeue(out _));

        queue.Enqueue(ActorRefs.Nobody, Message("d"));
        Assert.True(queue.HasMessages);
        Assert.True(queue.TryDequeue(out var fourth));
        Assert.Equal("d", fourth.Message);
    }
}
