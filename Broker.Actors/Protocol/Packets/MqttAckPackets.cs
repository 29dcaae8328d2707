using System.Collections.Immutable;

namespace Broker.Protocol.Packets;

/// <summary>
/// The four QoS acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP) share one shape: a packet identifier and, in v5,
/// a reason code, a reason string and user properties (MQTT-v5.0 3.4 to 3.7).
/// </summary>
public abstract record MqttPublishAckPacket : MqttPacket
{
    public ushort PacketId { get; init; }

    public MqttReasonCode ReasonCode { get; init; } = MqttReasonCode.Success;

    public string? ReasonString { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;
}

public sealed record MqttPubAckPacket : MqttPublishAckPacket
{
    public override MqttPacketType Type => MqttPacketType.PubAck;
}

public sealed record MqttPubRecPacket : MqttPublishAckPacket
{
    public override MqttPacketType Type => MqttPacketType.PubRec;
}

public sealed record MqttPubRelPacket : MqttPublishAckPacket
{
    public override MqttPacketType Type => MqttPacketType.PubRel;
}

public sealed record MqttPubCompPacket : MqttPublishAckPacket
{
    public override MqttPacketType Type => MqttPacketType.PubComp;
}
