using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Broker.Cluster;

/// <summary>
/// The mailbox of the actors there is one of per client (connection actor, session entity): unbounded, with the
/// deque semantics that <see cref="IWithUnboundedStash"/> needs, like Akka's default
/// <c>UnboundedDequeBasedMailbox</c>, but small while idle. Akka's queue is a <c>ConcurrentQueue</c> whose first
/// segment alone is about 1 KB (32 slots of 24 bytes plus the segment); two per client were the largest single item of
/// an idle connection's memory (measured with dotnet-gcdump, docs/benchmarks.md). This queue is a lock-free linked
/// list that holds one small node while empty.
/// Configured as <see cref="ConfigPath"/> in <see cref="BrokerHocon"/>.
/// </summary>
public sealed class LeanMailbox : MailboxType, IProducesMessageQueue<LeanDequeMessageQueue>
{
    /// <summary>The mailbox's configuration path, for <c>Props.WithMailbox</c>.</summary>
    public const string ConfigPath = "broker.lean-mailbox";

    public LeanMailbox(Settings settings, Config config) : base(settings, config)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new LeanDequeMessageQueue();
}

/// <summary>
/// The deque (stash) face of <see cref="LeanMessageQueue"/>: what a stash gives back goes first. Like Akka's
/// <c>DequeWrapperMessageQueue</c>, but the buffer of given-back envelopes is created on the first give-back: most
/// actors of a client never stash. One object with the queue it extends (it re-implements the queue's interface, so
/// Akka's calls reach these members), not a wrapper around another.
/// </summary>
public sealed class LeanDequeMessageQueue : LeanMessageQueue, IMessageQueue, IUnboundedDequeBasedMessageQueueSemantics
{
    private Stack<Envelope>? _first; // the actor's thread only

    /// <summary>The event loop this mailbox runs on (a connection actor's, see Transport.EventLoopDispatcher); null: the pool.</summary>
    public DotNetty.Common.Concurrency.IEventExecutor? Loop { get; set; }

    public new bool HasMessages => _first is not null || base.HasMessages;

    public new int Count => base.Count + (_first?.Count ?? 0);

    public new bool TryDequeue(out Envelope envelope)
    {
        if (_first is { } first)
        {
            envelope = first.Pop();
            if (first.Count == 0)
            {
                _first = null; // given back once (a stash emptied at start): not kept for the actor's life
            }

            return true;
        }

        return base.TryDequeue(out envelope);
    }

    public void EnqueueFirst(Envelope envelope) => (_first ??= new Stack<Envelope>()).Push(envelope);

    public new void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
        {
            deadletters.Enqueue(owner, envelope);
        }
    }
}

/// <summary>
/// A multi-producer, single-consumer FIFO of envelopes without locks: a linked list of nodes (D. Vyukov's intrusive
/// MPSC queue). A sender swaps itself in as the new head with one atomic exchange and then links the old head to it;
/// the mailbox run (the only consumer) follows the links from the tail. Empty, it holds one node (~40 bytes); each
/// message costs one node while it waits. A first version used a ring buffer under a lock: in the fan-in load test
/// (50 publishers' topics into one subscriber's session) a quarter of the broker's CPU went to spinning on that lock.
/// <code>
///   tail (consumed stub) ──► n1 ──► n2 ──► head        Enqueue: prev = Exchange(head, n); prev.Next = n
///                                                      Dequeue: next = tail.Next; if null, empty; tail = next
/// </code>
/// Between a sender's exchange and its link the consumer sees the queue end early; the sender's message is then
/// picked up by the mailbox run that the sender schedules right after Enqueue returns (Akka dispatches after
/// enqueueing), so nothing is lost.
/// </summary>
public class LeanMessageQueue : IMessageQueue, IUnboundedMessageQueueSemantics
{
    private Node _head; // written by senders (Interlocked)
    private Node _tail; // read and written by the consumer only
    private int _count; // Akka reads Count on the message path (an O(n) walk made a long mailbox quadratic)

    public LeanMessageQueue()
    {
        _head = _tail = new Node(default);
    }

    public bool HasMessages => Volatile.Read(ref _tail.Next) is not null;

    public int Count => Math.Max(0, Volatile.Read(ref _count));

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        var node = new Node(envelope);
        Interlocked.Increment(ref _count);
        var previous = Interlocked.Exchange(ref _head, node);
        Volatile.Write(ref previous.Next, node);
    }

    public bool TryDequeue(out Envelope envelope)
    {
        var consumed = _tail;
        var next = Volatile.Read(ref consumed.Next);
        if (next is null)
        {
            envelope = default;
            return false;
        }

        envelope = next.Envelope;
        next.Envelope = default; // the node stays as the stub: let the message be collected
        _tail = next;
        // The old stub is garbage now; it links to itself instead of to the next node. A dead node that the collector
        // has already promoted would otherwise keep every younger node after it alive through each young collection
        // (a reference from an older generation counts as a root there), and they would be promoted in turn: a
        // chain of every node this queue handled between two collections, copied by each of them (measured: about
        // 0.9 MB promoted per gen0 collection at 50,000 msg/s, the bulk of each pause). A sender that read the old
        // stub as the tail sees a link (not an empty queue): at worst one needless scheduling of the mailbox.
        Volatile.Write(ref consumed.Next, consumed);
        Interlocked.Decrement(ref _count);
        return true;
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
        {
            deadletters.Enqueue(owner, envelope);
        }
    }

    private sealed class Node(Envelope envelope)
    {
        public Envelope Envelope = envelope;
        public Node? Next;
    }
}
