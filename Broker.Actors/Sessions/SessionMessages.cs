using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// A message waiting in a session for its client: the application message, the QoS granted to this subscriber
/// (the lower of published and subscribed QoS, MQTT-3.8.4-?/v5 3.8.4), the retain flag it is sent with and the
/// v5 subscription identifiers of the subscriptions it matched. <see cref="SharedFilter"/> names the shared
/// subscription it was chosen for, so that it can go to another member if this one leaves the group. A non-zero
/// <see cref="PayloadId"/> means the payload is stored by the topic entity of Message.Topic under that id: the
/// session journal holds the message without its payload (the session keeps the payload in memory while it lives).
/// </summary>
public sealed record QueuedMessage(
    MqttApplicationMessage Message,
    MqttQoS QoS,
    bool Retain,
    ImmutableArray<uint> SubscriptionIdentifiers,
    string? SharedFilter = null,
    long PayloadId = 0);

/// <summary>An outbound QoS 1/2 message that was sent and awaits PUBACK, or PUBREC then PUBCOMP.</summary>
public sealed record InflightMessage(ushort PacketId, QueuedMessage Message, bool Released);

/// <summary>The options of one subscription as granted (MQTT-v5.0 3.8.3.1).</summary>
public sealed record SubscriptionOptions(
    MqttQoS QoS,
    bool NoLocal,
    bool RetainAsPublished,
    MqttRetainHandling RetainHandling,
    uint SubscriptionIdentifier);
