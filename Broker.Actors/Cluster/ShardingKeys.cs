using Akka.Cluster.Sharding;

namespace Broker.Cluster;

/// <summary>A message for the session entity of one client id (sharded by client id).</summary>
public interface IWithClientId
{
    string ClientId { get; }
}

/// <summary>A message for the topic entity of one topic name (sharded by topic).</summary>
public interface IWithTopic
{
    string Topic { get; }
}

/// <summary>
/// Routes <see cref="IWithClientId"/> messages to session entities. With <c>registry</c> (clean sessions beside their
/// connections), what decides who holds a client id (attaches, claims of live sessions, management requests) goes to
/// the registry of the id's shard (<see cref="Sessions.ClientIdRegistry"/>), an entity of the same shard; what the
/// registry hands on (<see cref="Sessions.RegistryForward"/>) goes to the id's entity.
/// </summary>
public sealed class ClientIdExtractor : HashCodeMessageExtractor
{
    private readonly bool _registry;

    public ClientIdExtractor(int maxShards, bool registry = false)
        : base(maxShards)
    {
        _registry = registry;
    }

    public override string? EntityId(object message) => message switch
    {
        Sessions.RegistryForward f => f.ClientId,
        Sessions.AttachSession or Sessions.ClaimLiveSession or Sessions.RegistryEntityStopped when _registry =>
            Sessions.ClientIdRegistry.EntityId,
        Operations.GetSessionInfo { AtEntity: false } when _registry => Sessions.ClientIdRegistry.EntityId,
        IWithClientId m => m.ClientId,
        _ => null,
    };

    /// <summary>The registry's messages go to the shard of the client id they name.</summary>
    public override string ShardId(string entityId, object? messageHint = null) =>
        base.ShardId(entityId == Sessions.ClientIdRegistry.EntityId && messageHint is IWithClientId m ? m.ClientId : entityId, messageHint);

#pragma warning disable CS0618, CS0672 // the region of this Akka version may still call the message form
    public override string? ShardId(object message) =>
        EntityId(message) is { } id ? ShardId(id, message) : null;
#pragma warning restore CS0618, CS0672
}

/// <summary>Routes <see cref="IWithTopic"/> messages to topic entities.</summary>
public sealed class TopicExtractor : HashCodeMessageExtractor
{
    public TopicExtractor(int maxShards)
        : base(maxShards)
    {
    }

    public override string? EntityId(object message) => message switch
    {
        IWithTopic m => m.Topic,
        _ => null,
    };
}
