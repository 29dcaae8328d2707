namespace Broker.Routing;

/// <summary>Marker for the journal events of <see cref="TopicEntity"/>.</summary>
public interface ITopicEvent : Persistence.Serialization.IBrokerSerializable
{
}

public sealed record TopicSubscriberAdded(string ClientId, string? ShareGroup, string? Node = null, long Incarnation = 0) : ITopicEvent
{
    public SubscriberKey Key => new(ClientId, ShareGroup, Node, Incarnation);
}

public sealed record TopicSubscriberRemoved(string ClientId, string? ShareGroup, string? Node = null, long Incarnation = 0) : ITopicEvent
{
    public SubscriberKey Key => new(ClientId, ShareGroup, Node, Incarnation);
}

public sealed record RetainedMessageSet(MqttApplicationMessage Message) : ITopicEvent;

public sealed record RetainedMessageCleared : ITopicEvent
{
    public static readonly RetainedMessageCleared Instance = new();
}

/// <summary>
/// The whole state of a topic entity, for snapshots: subscribers, retained message and the payloads stored once for
/// several sessions (manifest "te-snap2"; "te-snap" snapshots of earlier versions have no payloads).
/// </summary>
public sealed record TopicSnapshot(
    IReadOnlyList<SubscriberKey> Subscribers,
    MqttApplicationMessage? Retained,
    IReadOnlyList<SharedPayloadStored> Payloads) : Persistence.Serialization.IBrokerSerializable;
