using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;

namespace Broker.Cluster;

/// <summary>
/// Allocates new shards to the least loaded node, and never moves a shard that is running. A session shard holds live
/// connections' sessions; moving it when a node joins would close those connections (and end clean sessions) for no
/// gain: new sessions land on the new node anyway. Shards still move when their node leaves or dies.
/// </summary>
public sealed class NoRebalanceAllocationStrategy : IActorSystemDependentAllocationStrategy
{
    private readonly IShardAllocationStrategy _allocation = ShardAllocationStrategy.LeastShardAllocationStrategy(
        absoluteLimit: 0, relativeLimit: 0.1);

    /// <summary>The least-shard strategy reads cluster membership, so it must be started with the system.</summary>
    public void Start(ActorSystem system)
    {
        if (_allocation is IActorSystemDependentAllocationStrategy dependent)
        {
            dependent.Start(system);
        }
    }

    public Task<IActorRef> AllocateShard(
        IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations) =>
        _allocation.AllocateShard(requester, shardId, currentShardAllocations);

    public Task<IImmutableSet<string>> Rebalance(
        IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress) =>
        Task.FromResult<IImmutableSet<string>>(ImmutableHashSet<string>.Empty);
}
