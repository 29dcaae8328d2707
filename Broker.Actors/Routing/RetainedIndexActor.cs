using Akka.Actor;
using Akka.Event;

namespace Broker.Routing;

/// <summary>
/// A topic entity gained or lost its retained message. When <see cref="ReplyTo"/> is set, <see cref="RetainedIndexed"/>
/// answers once every node's index knows.
/// </summary>
public sealed record RetainedTopicChanged(string Topic, bool HasRetained, IActorRef? ReplyTo = null, long RequestId = 0);

public sealed record RetainedIndexed(long RequestId);

/// <summary>Which topics with a retained message match this (wildcard) filter? Answered by <see cref="RetainedTopicsFound"/>.</summary>
public sealed record FindRetainedTopics(string Filter, string SubscriptionFilter);

public sealed record RetainedTopicsFound(string SubscriptionFilter, IReadOnlyList<string> Topics);

/// <summary>
/// One per node, named "retained-index". Knows the name of every topic that holds a retained message, cluster-wide (a
/// <see cref="ReplicatedSetActor"/> set mirrored into a <see cref="TopicNameIndex"/>), so that a wildcard SUBSCRIBE
/// asks only the topic entities that match instead of scanning the world. The messages stay in their topic entities.
/// <para>
/// A node's index is whole only once it has been read (the stored set, then every member's replica, at start-up):
/// sharding may start a session entity on a node that has just joined, before that read. A lookup asked earlier waits
/// for it (in order) instead of answering from a partial index, so that a wildcard SUBSCRIBE on such a session gets
/// every retained message.
/// </para>
/// </summary>
public sealed class RetainedIndexActor : ReplicatedSetActor
{
    public const string Name = "retained-index";
    private readonly TopicNameIndex _index = new();
    private readonly Cluster.BrokerMetrics? _metrics;
    private readonly Dictionary<long, Action> _stored = new();
    private long _nextStore;
    private readonly Task? _indexRead;
    private List<(IActorRef Sender, FindRetainedTopics Find)>? _waiting; // lookups asked before the index was read

    /// <param name="indexWriter">
    /// Also keeps the set in storage (<see cref="Persistence.SessionIndex"/>), read back at start-up, so that a restart
    /// need not wake every topic entity to index its retained message again.
    /// </param>
    /// <param name="indexRead">
    /// Completes once this node's index has been read (<see cref="Cluster.BrokerContext.RoutesSynced"/>); lookups wait
    /// for it. Null: the index is whole from the start.
    /// </param>
    public RetainedIndexActor(Cluster.BrokerMetrics? metrics = null, IActorRef? indexWriter = null, Task? indexRead = null)
        : base("broker-retained-topics")
    {
        _metrics = metrics;
        _indexRead = indexRead is { IsCompleted: false } ? indexRead : null;
        Receive<RetainedTopicChanged>(c =>
        {
            if (c.HasRetained == Contains(c.Topic))
            {
                c.ReplyTo?.Tell(new RetainedIndexed(c.RequestId));
                return;
            }

            var replyTo = c.ReplyTo;
            var change = Persistence.SessionIndexChange.Retained(c.Topic, c.HasRetained);
            if (replyTo is null || indexWriter is null)
            {
                indexWriter?.Tell(new Persistence.WriteSessionIndex(change));
                Change(c.Topic, c.HasRetained, replyTo is null ? null : () => replyTo.Tell(new RetainedIndexed(c.RequestId)));
                return;
            }

            // Confirmed once every node's index and the stored set have it.
            var waiting = 2;
            void Done()
            {
                if (--waiting == 0)
                {
                    replyTo.Tell(new RetainedIndexed(c.RequestId));
                }
            }

            var id = ++_nextStore;
            _stored[id] = Done;
            indexWriter.Tell(new Persistence.WriteSessionIndex(change, Self, id));
            Change(c.Topic, c.HasRetained, Done);
        });
        Receive<Persistence.SessionIndexWritten>(w =>
        {
            if (_stored.Remove(w.RequestId, out var done))
            {
                done();
            }
        });
        Receive<FindRetainedTopics>(f =>
        {
            if (_waiting is not null)
            {
                _waiting.Add((Sender, f));
                return;
            }

            Find(Sender, f);
        });
        Receive<IndexRead>(_ =>
        {
            var waiting = _waiting ?? [];
            _waiting = null;
            if (waiting.Count > 0)
            {
                Log.Info("Retained index read: answering {0} lookup(s) of wildcard subscriptions that waited for it", waiting.Count);
            }

            foreach (var (sender, find) in waiting)
            {
                Find(sender, find);
            }
        });
    }

    protected override void PreStart()
    {
        base.PreStart();
        if (_indexRead is not null)
        {
            _waiting = new List<(IActorRef, FindRetainedTopics)>();
            _indexRead.PipeTo(Self, success: () => IndexRead.Instance, failure: _ => IndexRead.Instance);
        }
    }

    private void Find(IActorRef sender, FindRetainedTopics f)
    {
        var topics = new List<string>();
        _index.Match(f.Filter, topics);
        sender.Tell(new RetainedTopicsFound(f.SubscriptionFilter, topics));
    }

    protected override string PeerName => Name;

    public static Props Props(Cluster.BrokerMetrics? metrics = null, IActorRef? indexWriter = null, Task? indexRead = null) =>
        Akka.Actor.Props.Create(() => new RetainedIndexActor(metrics, indexWriter, indexRead));

    protected override void OnAdded(string element)
    {
        _index.Add(element);
        _metrics?.RetainedAdd(1);
    }

    protected override void OnRemoved(string element)
    {
        _index.Remove(element);
        _metrics?.RetainedAdd(-1);
    }

    private sealed class IndexRead
    {
        public static readonly IndexRead Instance = new();
    }
}
