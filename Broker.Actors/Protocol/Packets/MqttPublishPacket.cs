using System.Collections.Immutable;

namespace Broker.Protocol.Packets;

/// <summary>PUBLISH (MQTT-3.3 / MQTT-v5.0 3.3).</summary>
public sealed record MqttPublishPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Publish;

    /// <summary>The topic name; empty when a v5 publisher uses a topic alias alone.</summary>
    public string Topic { get; init; } = "";

    public ReadOnlyMemory<byte> Payload { get; init; }

    public MqttQoS QoS { get; init; }

    public bool Retain { get; init; }

    public bool Dup { get; init; }

    /// <summary>Packet identifier; 0 for QoS 0 (where it is not on the wire).</summary>
    public ushort PacketId { get; init; }

    /// <summary>v5 Topic Alias; 0 when absent.</summary>
    public ushort TopicAlias { get; init; }

    /// <summary>v5 Subscription Identifiers (server to client only).</summary>
    public ImmutableArray<uint> SubscriptionIdentifiers { get; init; } = ImmutableArray<uint>.Empty;

    /// <summary>v5 application-message properties forwarded to subscribers.</summary>
    public MqttMessageProperties Properties { get; init; } = MqttMessageProperties.Empty;

    public bool Equals(MqttPublishPacket? other) =>
        other is not null && Topic == other.Topic && Payload.Span.SequenceEqual(other.Payload.Span) &&
        QoS == other.QoS && Retain == other.Retain && Dup == other.Dup && PacketId == other.PacketId &&
        TopicAlias == other.TopicAlias &&
        SubscriptionIdentifiers.AsSpan().SequenceEqual(other.SubscriptionIdentifiers.AsSpan()) &&
        Properties.Equals(other.Properties);

    public override int GetHashCode() => HashCode.Combine(Topic, QoS, PacketId);
}
