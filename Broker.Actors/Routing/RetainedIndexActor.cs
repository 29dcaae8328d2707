using Akka.Actor;
using Akka.DistributedData;

namespace Broker.Routing;

/// <summary>A topic entity gained or lost its retained message.</summary>
public sealed record RetainedTopicChanged(string Topic, bool HasRetained);

/// <summary>Which topics with a retained message match this (wildcard) filter? Answered by <see cref="RetainedTopicsFound"/>.</summary>
public sealed record FindRetainedTopics(string Filter, string SubscriptionFilter);

public sealed record RetainedTopicsFound(string SubscriptionFilter, IReadOnlyList<string> Topics);

/// <summary>
/// One per node. Knows the name of every topic that holds a retained message, cluster-wide (an Akka.DistributedData
/// ORSet mirrored into a <see cref="TopicNameIndex"/>), so that a wildcard SUBSCRIBE asks only the topic entities
/// that match instead of scanning the world. The messages themselves stay in their topic entities.
/// </summary>
public sealed class RetainedIndexActor : ReceiveActor
{
    private static readonly ORSetKey<string> Key = new("broker-retained-topics");

    private readonly TopicNameIndex _index = new();
    private readonly HashSet<string> _topics = new(StringComparer.Ordinal);
    private readonly IActorRef _replicator;
    private readonly Akka.Cluster.UniqueAddress _self;

    public RetainedIndexActor()
    {
        var ddata = DistributedData.Get(Context.System);
        _replicator = ddata.Replicator;
        _self = Akka.Cluster.Cluster.Get(Context.System).SelfUniqueAddress;

        Receive<RetainedTopicChanged>(c =>
        {
            if (c.HasRetained)
            {
                Add(c.Topic);
                _replicator.Tell(Dsl.Update(Key, ORSet<string>.Empty, WriteLocal.Instance, s => s.Add(_self, c.Topic)));
            }
            else
            {
                Remove(c.Topic);
                _replicator.Tell(Dsl.Update(Key, ORSet<string>.Empty, WriteLocal.Instance, s => s.Remove(_self, c.Topic)));
            }
        });
        Receive<FindRetainedTopics>(f =>
        {
            var topics = new List<string>();
            _index.Match(f.Filter, topics);
            Sender.Tell(new RetainedTopicsFound(f.SubscriptionFilter, topics));
        });
        Receive<Changed>(c =>
        {
            if (!c.Key.Equals(Key))
            {
                return;
            }

            var current = c.Get(Key).Elements;
            foreach (var topic in current)
            {
                Add(topic);
            }

            // Removals are rare (a retained message cleared on another node); look for them only when sizes differ.
            if (_topics.Count != current.Count)
            {
                foreach (var topic in _topics.Where(t => !current.Contains(t)).ToList())
                {
                    Remove(topic);
                }
            }
        });
        Receive<UpdateSuccess>(_ => { });
        Receive<UpdateTimeout>(_ => { });
    }

    private void Add(string topic)
    {
        if (_topics.Add(topic))
        {
            _index.Add(topic);
        }
    }

    private void Remove(string topic)
    {
        if (_topics.Remove(topic))
        {
            _index.Remove(topic);
        }
    }

    protected override void PreStart() => _replicator.Tell(Dsl.Subscribe(Key, Self));

    public static Props Props() => Akka.Actor.Props.Create(() => new RetainedIndexActor());
}
