using Akka.Actor;
using Broker.Cluster;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Routing;

/// <summary>
/// An application message as it travels inside the cluster: what a publisher sent, stamped with the publisher's
/// client id (for v5 No Local) and an absolute expiry (Unix ms, 0 = never) derived from Message Expiry Interval.
/// </summary>
public sealed record MqttApplicationMessage(
    string Topic,
    ReadOnlyMemory<byte> Payload,
    MqttQoS QoS,
    bool Retain,
    MqttMessageProperties Properties,
    string PublisherClientId,
    long ExpiresAtUnixMs)
{
    public bool IsExpired(long nowUnixMs) => ExpiresAtUnixMs != 0 && nowUnixMs >= ExpiresAtUnixMs;
}

/// <summary>
/// Where a QoS 2 message from a persistent session was first accepted, so that it can be routed again (after its
/// publisher's session moved or failed mid-routing) without reaching any subscriber twice. <see cref="Stream"/> is a
/// random id of the publisher's session (one per life of its journal) and <see cref="Seq"/> numbers that session's
/// QoS 2 messages; with the publisher's client id they name the message. <see cref="LowWater"/> is the lowest
/// sequence number the publisher may still route again: a subscriber's session forgets the numbers below it.
/// </summary>
public sealed record MessageOrigin(long Stream, long Seq, long LowWater);

/// <summary>
/// A PUBLISH on its way to the topic entity. When <see cref="AckTo"/> is set the topic answers
/// <see cref="PublishRouted"/> with how many <see cref="DeliveryStored"/> confirmations the subscribers' sessions will
/// send to AckTo; the publisher acknowledges once all have come (the durability promise). <see cref="Origin"/> is set
/// for a QoS 2 message of a persistent session and travels on to every <see cref="Deliver"/>.
/// </summary>
public sealed record RoutePublish(MqttApplicationMessage Message, IActorRef? AckTo, long AckId, MessageOrigin? Origin = null)
    : IWithTopic, Persistence.Serialization.IBrokerSerializable

{
    public string Topic => Message.Topic;
}

/// <summary>
/// Consecutive publishes of one connection to one topic, none of them retained, routed by the topic entity one after
/// the other as if each had come alone: a burst of publishes crosses to the topic's node as one message, not one each.
/// </summary>
public sealed record RoutePublishes(string Topic, IReadOnlyList<RoutePublish> Items) : IWithTopic, Persistence.Serialization.IBrokerSerializable;

/// <summary>The topic routed a publish and sent it to <see cref="Deliveries"/> sessions that will confirm.</summary>
public sealed record PublishRouted(long AckId, int Deliveries) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// A session stored (or deliberately dropped) a delivery that asked for confirmation; a session host confirms for
/// <see cref="Count"/> live sessions at once. <see cref="Outcome"/> says otherwise when the session's queue was full:
/// <see cref="DeliveryOutcome.Held"/> is no confirmation but a notice that one will come late (the publisher stops
/// being read meanwhile), <see cref="DeliveryOutcome.Refused"/> confirms that the message was not taken.
/// </summary>
public sealed record DeliveryStored(long AckId, int Count = 1, DeliveryOutcome Outcome = DeliveryOutcome.Stored)
    : Persistence.Serialization.IBrokerSerializable;

/// <summary>How a session answered a delivery that asked for confirmation (see <see cref="DeliveryStored"/>).</summary>
public enum DeliveryOutcome : byte
{
    Stored = 0,
    Held = 1,
    Refused = 2,
}

/// <summary>
/// A message for one subscriber session. <see cref="SharedFilter"/> is the full "$share/group/filter" when the
/// delivery was chosen for a shared subscription; otherwise the session matches its own (non-shared) subscriptions.
/// <see cref="RetainedForFilter"/> marks a retained message sent because of a new subscription (the retain flag stays
/// set). <see cref="Origin"/> (QoS 2 from a persistent session) lets the session take a message routed twice once.
/// A non-zero <see cref="PayloadId"/> offers the payload for storage by the topic entity: a persistent session then
/// journals only a reference (see SharedPayloadProtocol.cs).
/// </summary>
public sealed record Deliver(
    string ClientId,
    MqttApplicationMessage Message,
    string? SharedFilter,
    string? RetainedForFilter,
    IActorRef? AckTo,
    long AckId,
    MessageOrigin? Origin = null,
    long PayloadId = 0) : IWithClientId, Persistence.Serialization.IBrokerSerializable
{
    /// <summary>
    /// In process only (never serialized): a session host confirmed this delivery for its live session already
    /// (Sessions/SessionHost.cs), within the room the session's <see cref="Sessions.LiveQueueGauge"/> showed.
    /// </summary>
    public bool ConfirmedByHost { get; init; }
}

/// <summary>
/// Registers an exact-topic (non-wildcard) subscription in the topic's entity; answered by <see cref="TopicSubscribed"/>.
/// <see cref="Node"/> and <see cref="Incarnation"/> name a live session beside its connection (see <see cref="SubscriberKey"/>).
/// </summary>
public sealed record SubscribeTopic(string Topic, string ClientId, string? ShareGroup, long RequestId, string? Node = null, long Incarnation = 0)
    : IWithTopic, Persistence.Serialization.IBrokerSerializable
{
    public SubscriberKey Key => new(ClientId, ShareGroup, Node, Incarnation);
}

public sealed record TopicSubscribed(long RequestId) : Persistence.Serialization.IBrokerSerializable;

/// <summary>Removes an exact-topic subscription; not answered.</summary>
public sealed record UnsubscribeTopic(string Topic, string ClientId, string? ShareGroup, string? Node = null, long Incarnation = 0)
    : IWithTopic, Persistence.Serialization.IBrokerSerializable
{
    public SubscriberKey Key => new(ClientId, ShareGroup, Node, Incarnation);
}

/// <summary>
/// Asks the topic's entity to send its retained message (if any) to the client for the given filter; a live session
/// beside its connection names its node and incarnation.
/// </summary>
public sealed record RequestRetained(string Topic, string ClientId, string Filter, string? Node = null, long Incarnation = 0)
    : IWithTopic, Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// The topic entity's answer to a <see cref="RequestRetained"/>: its retained message (if it has one) is on its way.
/// Until it comes the session may ask again, should the request have been lost with a node that left.
/// </summary>
public sealed record RetainedRequestAnswered(string Topic, string Filter) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// A message chosen for a member of a shared subscription that left before completing it: the topic entity picks
/// another member of the same group (never <see cref="ExcludedClientId"/>).
/// </summary>
public sealed record RedeliverShared(MqttApplicationMessage Message, string Group, string Filter, string ExcludedClientId)
    : IWithTopic, Persistence.Serialization.IBrokerSerializable

{
    public string Topic => Message.Topic;
}

/// <summary>Starts a stored topic entity after a restart, so that its retained message is indexed again; answered with <see cref="TopicWoken"/>.</summary>
public sealed record WakeTopic(string Topic) : IWithTopic, Persistence.Serialization.IBrokerSerializable;

public sealed record TopicWoken(string Topic) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// The key under which a subscriber sits in topic entities and the wildcard trie. Without a <see cref="Node"/>,
/// deliveries go to the client's session entity through the session region (wherever sharding placed it). With one,
/// the subscriber is a live session running beside its connection on that node (a clean session, see
/// SessionHost): deliveries go to that node's session host in one <see cref="NodeDeliver"/> per node, and
/// <see cref="Incarnation"/> tells that session from an earlier or later one of the same client id on the same node.
/// <para>
/// A key with an empty <see cref="ClientId"/> and no share group is a node's route: every live session of that
/// node subscribed to the topic, which the node's session host knows (Sessions/LocalRouteTable.cs). A topic entity
/// stores one per node and topic, not one per clean session, and sends the node one delivery for all of them.
/// </para>
/// </summary>
public readonly record struct SubscriberKey(string ClientId, string? ShareGroup, string? Node = null, long Incarnation = 0);

/// <summary>
/// One recipient of a <see cref="NodeDeliver"/>: a live session on the receiving node, or, with an empty
/// <see cref="ClientId"/>, every live session there subscribed to the message's topic (the node's route).
/// </summary>
public readonly record struct NodeRecipient(string ClientId, long Incarnation, string? SharedFilter);

/// <summary>
/// One publish for every live session of one node that it goes to (the payload crosses the network once per node,
/// not once per subscriber). The node's session host hands a <see cref="Deliver"/> to each recipient; one that is
/// no longer there gets it through the session region, whose entity confirms or drops it. <see cref="FromEntity"/>
/// marks one the session entity forwarded: it does not go back, unless <see cref="BackIfGone"/> (a persistent
/// session beside its connection, whose entity takes back what its live session can no longer take).
/// </summary>
public sealed record NodeDeliver(
    MqttApplicationMessage Message,
    IReadOnlyList<NodeRecipient> Recipients,
    IActorRef? AckTo,
    long AckId,
    MessageOrigin? Origin = null,
    long PayloadId = 0,
    string? RetainedForFilter = null,
    bool FromEntity = false,
    bool BackIfGone = false) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// The topic region's hand-off (and idle passivation) stop message: the shard moves to another node, or the entity
/// leaves memory. Unlike a PoisonPill it waits its turn: while the entity starts, recovers or waits for its retained
/// topic to be indexed it is stashed with what came before it (a <see cref="RequestRetained"/>, a publish), and those
/// are handled first; then the entity stops once every write is stored. A PoisonPill stopped it at once and dropped
/// what it had stashed, with nobody to ask again.
/// </summary>
public sealed class TopicHandOff : INoSerializationVerificationNeeded
{
    public static readonly TopicHandOff Instance = new();
}
