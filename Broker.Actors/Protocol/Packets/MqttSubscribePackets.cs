using System.Collections.Immutable;

namespace Broker.Protocol.Packets;

/// <summary>One topic filter of SUBSCRIBE with its options (MQTT-v5.0 3.8.3.1; 3.1.1 carries only the QoS).</summary>
public sealed record MqttTopicSubscription
{
    public required string TopicFilter { get; init; }

    public MqttQoS QoS { get; init; }

    public bool NoLocal { get; init; }

    public bool RetainAsPublished { get; init; }

    public MqttRetainHandling RetainHandling { get; init; }
}

/// <summary>SUBSCRIBE (MQTT-3.8 / MQTT-v5.0 3.8).</summary>
public sealed record MqttSubscribePacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Subscribe;

    public ushort PacketId { get; init; }

    public ImmutableArray<MqttTopicSubscription> Subscriptions { get; init; } = ImmutableArray<MqttTopicSubscription>.Empty;

    /// <summary>v5 Subscription Identifier (1..268,435,455); 0 when absent.</summary>
    public uint SubscriptionIdentifier { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;

    public bool Equals(MqttSubscribePacket? other) =>
        other is not null && PacketId == other.PacketId && SubscriptionIdentifier == other.SubscriptionIdentifier &&
        Subscriptions.AsSpan().SequenceEqual(other.Subscriptions.AsSpan()) &&
        UserProperties.AsSpan().SequenceEqual(other.UserProperties.AsSpan());

    public override int GetHashCode() => HashCode.Combine(PacketId, Subscriptions.Length);
}

/// <summary>SUBACK (MQTT-3.9 / MQTT-v5.0 3.9): one reason code per requested filter, in order.</summary>
public sealed record MqttSubAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.SubAck;

    public ushort PacketId { get; init; }

    /// <summary>v5 reason codes; for 3.1.1 the granted QoS 0/1/2 or 0x80 failure.</summary>
    public ImmutableArray<MqttReasonCode> ReasonCodes { get; init; } = ImmutableArray<MqttReasonCode>.Empty;

    public string? ReasonString { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;

    public bool Equals(MqttSubAckPacket? other) =>
        other is not null && PacketId == other.PacketId && ReasonString == other.ReasonString &&
        ReasonCodes.AsSpan().SequenceEqual(other.ReasonCodes.AsSpan()) &&
        UserProperties.AsSpan().SequenceEqual(other.UserProperties.AsSpan());

    public override int GetHashCode() => HashCode.Combine(PacketId, ReasonCodes.Length);
}

/// <summary>UNSUBSCRIBE (MQTT-3.10 / MQTT-v5.0 3.10).</summary>
public sealed record MqttUnsubscribePacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Unsubscribe;

    public ushort PacketId { get; init; }

    public ImmutableArray<string> TopicFilters { get; init; } = ImmutableArray<string>.Empty;

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;

    public bool Equals(MqttUnsubscribePacket? other) =>
        other is not null && PacketId == other.PacketId &&
        TopicFilters.AsSpan().SequenceEqual(other.TopicFilters.AsSpan()) &&
        UserProperties.AsSpan().SequenceEqual(other.UserProperties.AsSpan());

    public override int GetHashCode() => HashCode.Combine(PacketId, TopicFilters.Length);
}

/// <summary>UNSUBACK (MQTT-3.11 / MQTT-v5.0 3.11); reason codes exist only in v5.</summary>
public sealed record MqttUnsubAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.UnsubAck;

    public ushort PacketId { get; init; }

    public ImmutableArray<MqttReasonCode> ReasonCodes { get; init; } = ImmutableArray<MqttReasonCode>.Empty;

    public string? ReasonString { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;

    public bool Equals(MqttUnsubAckPacket? other) =>
        other is not null && PacketId == other.PacketId && ReasonString == other.ReasonString &&
        ReasonCodes.AsSpan().SequenceEqual(other.ReasonCodes.AsSpan()) &&
        UserProperties.AsSpan().SequenceEqual(other.UserProperties.AsSpan());

    public override int GetHashCode() => HashCode.Combine(PacketId, ReasonCodes.Length);
}
