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
/// <see cref="Seq"/> is the message's position in its session (the count of messages queued before it, replayed the
/// same way on recovery): its outbound packet id derives from it, so it is not journaled when the message is sent.
/// </summary>
public sealed record QueuedMessage(
    MqttApplicationMessage Message,
    MqttQoS QoS,
    bool Retain,
    ImmutableArray<uint> SubscriptionIdentifiers,
    string? SharedFilter = null,
    long PayloadId = 0)
{
    public long Seq { get; init; }

    /// <summary>The outbound packet id of the message at <paramref name="seq"/>: 1..65535, the same on every resend.</summary>
    public static ushort PacketIdOf(long seq) => (ushort)((seq % ushort.MaxValue) + 1);
}

/// <summary>An outbound QoS 1/2 message that was sent and awaits PUBACK, or PUBREC then PUBCOMP.</summary>
public sealed record InflightMessage(ushort PacketId, QueuedMessage Message, bool Released);

/// <summary>The options of one subscription as granted (MQTT-v5.0 3.8.3.1).</summary>
public sealed record SubscriptionOptions(
    MqttQoS QoS,
    bool NoLocal,
    bool RetainAsPublished,
    MqttRetainHandling RetainHandling,
    uint SubscriptionIdentifier);
