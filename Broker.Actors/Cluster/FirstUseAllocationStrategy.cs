using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;

namespace Broker.Cluster;

/// <summary>
/// Places a new topic shard on the node that first asks for it, unless that node already holds more than its share
/// (then the least loaded node); rebalances like the least-shard strategy. The first to address a topic is most often
/// the session that subscribes to it (a device's command topic) or the client that publishes on it (a device's
/// telemetry topic), so the topic entity then runs on the node of one of its two ends and a delivery crosses the
/// network once at most, instead of twice on average when the topic's node is chosen without regard to its users.
/// </summary>
public sealed class FirstUseAllocationStrategy : IActorSystemDependentAllocationStrategy
{
    private const int Tolerance = 1; // shards above the average a node may hold and still take the shards it asks for
    private readonly IShardAllocationStrategy _leastShards = ShardAllocationStrategy.LeastShardAllocationStrategy(
        absoluteLimit: 20, relativeLimit: 0.1); // rebalancing as configured in BrokerHocon

    public void Start(ActorSystem system)
    {
        if (_leastShards is IActorSystemDependentAllocationStrategy dependent)
        {
            dependent.Start(system);
        }
    }

    public Task<IActorRef> AllocateShard(
        IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations)
    {
        if (currentShardAllocations.TryGetValue(requester, out var own) && currentShardAllocations.Count > 0)
        {
            var total = currentShardAllocations.Values.Sum(shards => shards.Count);
            var average = (double)total / currentShardAllocations.Count;
            if (own.Count <= average + Tolerance)
            {
                return Task.FromResult(requester);
            }
        }

        return _leastShards.AllocateShard(requester, shardId, currentShardAllocations);
    }

    public Task<IImmutableSet<string>> Rebalance(
        IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress) =>
        _leastShards.Rebalance(currentShardAllocations, rebalanceInProgress);
}
