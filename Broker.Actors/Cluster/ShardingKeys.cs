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

/// <summary>Routes <see cref="IWithClientId"/> messages to session entities.</summary>
public sealed class ClientIdExtractor : HashCodeMessageExtractor
{
    public ClientIdExtractor(int maxShards)
        : base(maxShards)
    {
    }

    public override string? EntityId(object message) => message switch
    {
        IWithClientId m => m.ClientId,
        _ => null,
    };
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
