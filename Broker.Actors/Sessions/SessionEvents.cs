using Broker.Protocol.Packets;

namespace Broker.Sessions;

/// <summary>
/// Journal events of a persistent session (clean sessions apply the same events without storing them).
/// COMPATIBILITY NOTES: never rename or reorder fields of a stored event; add a V2 type and an adapter instead.
/// </summary>
public interface ISessionEvent : Persistence.Serialization.IBrokerSerializable
{
}

/// <summary>
/// A connection attached with these session settings (expiry in seconds, the will to publish). <see cref="NextSeq"/>
/// is the position the next queued message takes (absent in older journals): messages a clean session held before it
/// became persistent are not journaled, so recovery learns here where the positions continue.
/// </summary>
public sealed record SessionOpened(uint ExpirySeconds, MqttWill? Will, long? NextSeq = null) : ISessionEvent;

/// <summary>Clean Start: everything before this event is discarded.</summary>
public sealed record SessionCleared : ISessionEvent
{
    public static readonly SessionCleared Instance = new();
}

public sealed record SubscriptionAdded(string Filter, SubscriptionOptions Options) : ISessionEvent;

public sealed record SubscriptionRemoved(string Filter) : ISessionEvent;

/// <summary>
/// A message was queued for the client (the oldest is dropped when the queue is full). <see cref="Origin"/> (QoS 2
/// from a persistent session) is remembered, so that the same message routed again is not taken twice.
/// </summary>
public sealed record MessageQueued(QueuedMessage Message, Routing.MessageOrigin? Origin = null) : ISessionEvent;

/// <summary>
/// Recovery found no stored payload for these references of the session (they were never confirmed to a publisher:
/// the topic had not stored the payload with this session as holder): their queued and in-flight entries go.
/// </summary>
public sealed record QueuedRefsDropped(string Topic, IReadOnlyList<long> Ids) : ISessionEvent;

/// <summary>The head of the queue was discarded unsent (expired). Older journals only: see <see cref="MessageDiscarded"/>.</summary>
public sealed record QueueHeadDiscarded : ISessionEvent
{
    public static readonly QueueHeadDiscarded Instance = new();
}

/// <summary>The message at this position expired before it was sent: it is discarded.</summary>
public sealed record MessageDiscarded(long Seq) : ISessionEvent;

/// <summary>
/// The head of the queue was sent with this packet id and is now in flight. Older journals only: a message's packet id
/// now derives from its position (<see cref="QueuedMessage.PacketIdOf"/>), so a send is not journaled; recovery
/// treats every message not completed as possibly sent, and resends it under the same id.
/// </summary>
public sealed record MessageSent(ushort PacketId) : ISessionEvent;

/// <summary>
/// PUBREC arrived for an in-flight QoS 2 message; PUBREL is now owed. Journaled before the PUBREL goes: from then on
/// the client may have forgotten the id, so a PUBLISH under it must never go again.
/// </summary>
public sealed record MessageReleased(ushort PacketId) : ISessionEvent;

/// <summary>
/// PUBACK or PUBCOMP arrived: the in-flight message is done. Not awaited: lost in a crash, it only means the message
/// is sent again (QoS 1 allows it; for QoS 2 the client still holds the id, or PUBREL is what goes again).
/// </summary>
public sealed record MessageCompleted(ushort PacketId) : ISessionEvent;

/// <summary>
/// An inbound QoS 2 PUBLISH of a persistent session was accepted as message <see cref="Seq"/> of origin stream
/// <see cref="Stream"/> and is about to be routed. It is journaled before routing, so that whatever happens to this
/// session before the message is stored for every subscriber (a shard hand-off, a crash), the session that recovers
/// routes it again under the same origin and the subscribers' sessions recognise it. Ends with
/// <see cref="InboundQos2Stored"/> (PUBREC) or, when given up, <see cref="InboundQos2Released"/>.
/// </summary>
public sealed record InboundQos2Pending(ushort PacketId, long Stream, long Seq, Routing.MqttApplicationMessage Message) : ISessionEvent;

/// <summary>An inbound QoS 2 message was routed and stored; its id is held until PUBREL.</summary>
public sealed record InboundQos2Stored(ushort PacketId) : ISessionEvent;

/// <summary>PUBREL released the id (or the pending message was given up: v5 PUBREC 0x80); the id is free again.</summary>
public sealed record InboundQos2Released(ushort PacketId) : ISessionEvent;

/// <summary>
/// The client left the shared subscription: its queued and unreleased in-flight messages of that subscription were
/// handed back to the group (MQTT-v5.0 4.8.2: a message is delivered to one member that is still subscribed).
/// </summary>
public sealed record SharedMessagesHandedBack(string SharedFilter) : ISessionEvent;

/// <summary>
/// The client's connection ended at this time; expiry counts from here, also across restarts. Messages at positions
/// below <see cref="SentBelow"/> may have been sent (absent in older journals): sent again, they carry DUP.
/// </summary>
public sealed record SessionDetached(long AtUnixMs, long? SentBelow = null) : ISessionEvent;

/// <summary>A v5 DISCONNECT changed the session expiry, or the will was published or cancelled.</summary>
public sealed record SessionSettingsChanged(uint ExpirySeconds, bool WillCleared) : ISessionEvent;

/// <summary>
/// The whole state of a persistent session, so that recovery reads one snapshot plus the events after it.
/// <see cref="InboundPending"/>, <see cref="OriginStream"/>/<see cref="OriginSeq"/> (the next QoS 2 message's
/// origin) and <see cref="SeenOrigins"/> (QoS 2 messages taken, by origin) came later: older snapshots lack them.
/// So do <see cref="NextSeq"/> and <see cref="SentBelow"/> (-1: an older snapshot, whose messages carry no position
/// and are numbered on restore) and the messages' own <see cref="QueuedMessage.Seq"/>.
/// </summary>
public sealed record SessionSnapshot(
    uint ExpirySeconds,
    MqttWill? Will,
    IReadOnlyList<KeyValuePair<string, SubscriptionOptions>> Subscriptions,
    IReadOnlyList<QueuedMessage> Queue,
    IReadOnlyList<InflightMessage> Inflight,
    IReadOnlyList<ushort> InboundQos2,
    long DetachedAtUnixMs = 0,
    IReadOnlyList<InboundQos2Pending>? InboundPending = null,
    long OriginStream = 0,
    long OriginSeq = 0,
    IReadOnlyList<SeenOrigin>? SeenOrigins = null,
    long NextSeq = -1,
    long SentBelow = 0) : Persistence.Serialization.IBrokerSerializable;
