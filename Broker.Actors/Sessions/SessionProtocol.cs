using Akka.Actor;
using Broker.Cluster;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>Marker for commands a connection sends to its session entity.</summary>
public interface ISessionCommand : Persistence.Serialization.IBrokerSerializable
{
    IActorRef Connection { get; }
}

/// <summary>
/// What a CONNECT asks of the session: the protocol version, Clean Start, the effective session expiry (seconds;
/// 0 ends the session with the connection, uint.MaxValue never expires), the will, and the client's Receive Maximum.
/// </summary>
public sealed record ConnectionInfo(
    MqttProtocolVersion Version,
    bool CleanStart,
    uint SessionExpiry,
    MqttWill? Will,
    int ReceiveMaximum);

/// <summary>A connection that completed CONNECT claims the session of its client id (sent through the shard region).</summary>
public sealed record AttachSession(string ClientId, IActorRef Connection, ConnectionInfo Info) : IWithClientId, ISessionCommand;

/// <summary>
/// The session accepted the connection; <see cref="SessionPresent"/> goes into CONNACK. <see cref="Beside"/>: the
/// session is a live session beside the connection, on its node, so the two do not watch each other but tell each other
/// when they stop (<see cref="LiveSessionStopped"/>, <see cref="ConnectionStopped"/>); in process only, never serialized.
/// </summary>
public sealed record SessionAttached(bool SessionPresent, bool Beside = false) : Persistence.Serialization.IBrokerSerializable;

/// <summary>Another connection took the session over: close with v5 reason 0x8E [MQTT-3.1.4-3].</summary>
public sealed record SessionTakenOver : Persistence.Serialization.IBrokerSerializable
{
    public static readonly SessionTakenOver Instance = new();
}

/// <summary>
/// The connection ended. <see cref="PublishWill"/> is false only after a normal DISCONNECT (v5 reason 0x00);
/// <see cref="NewExpiry"/> carries a v5 DISCONNECT's Session Expiry Interval.
/// </summary>
public sealed record DetachSession(IActorRef Connection, bool PublishWill, uint? NewExpiry) : ISessionCommand;

public sealed record SessionSubscribe(IActorRef Connection, MqttSubscribePacket Packet) : ISessionCommand;

public sealed record SessionUnsubscribe(IActorRef Connection, MqttUnsubscribePacket Packet) : ISessionCommand;

/// <summary>The client acknowledged an outbound PUBLISH: PUBACK, PUBREC or PUBCOMP.</summary>
public sealed record OutboundAck(IActorRef Connection, MqttPacketType Type, ushort PacketId, MqttReasonCode ReasonCode) : ISessionCommand;

/// <summary>An inbound QoS 2 PUBLISH; the session keeps its packet id until PUBREL (exactly once, MQTT-4.3.3).</summary>
public sealed record InboundQos2Publish(IActorRef Connection, MqttApplicationMessage Message, ushort PacketId) : ISessionCommand;

/// <summary>The client's PUBREL for an inbound QoS 2 message.</summary>
public sealed record InboundRelease(IActorRef Connection, ushort PacketId) : ISessionCommand;

/// <summary>
/// Session to connection: an inbound QoS 2 message could not be stored for every subscriber in time. v5 answers
/// PUBREC 0x80; 3.1.1 has no failure code, so the connection closes and the client resends after reconnecting.
/// <see cref="Refused"/>: a subscriber's full queue refused it after holding it (v5 PUBREC 0x97, Quota exceeded).
/// </summary>
public sealed record InboundStoreFailed(ushort PacketId, bool Refused = false) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// Session to connection: a subscriber's full queue holds this inbound QoS 2 publish; its PUBREC waits, and the
/// connection stops reading until it goes out (as for a held QoS 1 publish).
/// </summary>
public sealed record InboundQos2Held(ushort PacketId) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// Starts the session entity of a stored session after a restart (its expiry clock, its routes); answered with
/// <see cref="SessionWoken"/> once every route of the session is confirmed on every node.
/// </summary>
public sealed record WakeSession(string ClientId) : IWithClientId, Persistence.Serialization.IBrokerSerializable;

public sealed record SessionWoken(string ClientId) : Persistence.Serialization.IBrokerSerializable;

/// <summary>Session to connection: write this packet (SUBACK, UNSUBACK, PUBREC, PUBREL, PUBCOMP).</summary>
public sealed record SendPacket(MqttPacket Packet) : Persistence.Serialization.IBrokerSerializable;

/// <summary>
/// Session to connection: send this message as PUBLISH with this packet id (0 for QoS 0). A QoS 0 back-pressure probe
/// carries its publisher's reply address: the connection answers it once the message is written, or once its channel
/// is writable again (see ClientConnectionActor.Backpressure), so that the answer crosses every hop, nodes included.
/// </summary>
public sealed record SendPublish(QueuedMessage Message, ushort PacketId, bool Dup, IActorRef? ProbeTo = null, long ProbeId = 0)
    : Persistence.Serialization.IBrokerSerializable;
