using System.Collections.Immutable;

namespace Broker.Protocol.Packets;

/// <summary>The will message carried by CONNECT (MQTT-3.1.2.5 / MQTT-v5.0 3.1.3.2).</summary>
public sealed record MqttWill
{
    public required string Topic { get; init; }

    public ReadOnlyMemory<byte> Payload { get; init; }

    public MqttQoS QoS { get; init; }

    public bool Retain { get; init; }

    /// <summary>v5 Will Delay Interval in seconds (0 when absent).</summary>
    public uint DelayInterval { get; init; }

    public MqttMessageProperties Properties { get; init; } = MqttMessageProperties.Empty;

    public bool Equals(MqttWill? other) =>
        other is not null && Topic == other.Topic && Payload.Span.SequenceEqual(other.Payload.Span) &&
        QoS == other.QoS && Retain == other.Retain && DelayInterval == other.DelayInterval &&
        Properties.Equals(other.Properties);

    public override int GetHashCode() => HashCode.Combine(Topic, QoS, Retain);
}

/// <summary>CONNECT (MQTT-3.1 / MQTT-v5.0 3.1).</summary>
public sealed record MqttConnectPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Connect;

    /// <summary>"MQTT" for 3.1.1 and 5.0, "MQIsdp" for 3.1.</summary>
    public string ProtocolName { get; init; } = "MQTT";

    public MqttProtocolVersion ProtocolVersion { get; init; } = MqttProtocolVersion.V311;

    public string ClientId { get; init; } = "";

    /// <summary>Clean Session (3.1.1) / Clean Start (5.0).</summary>
    public bool CleanStart { get; init; } = true;

    /// <summary>Keep alive in seconds; 0 disables it.</summary>
    public ushort KeepAlive { get; init; }

    public string? Username { get; init; }

    public ReadOnlyMemory<byte>? Password { get; init; }

    public MqttWill? Will { get; init; }

    // ---- MQTT 5.0 properties (MQTT-v5.0 3.1.2.11) ----

    /// <summary>Session Expiry Interval in seconds; 0 when absent. 0xFFFFFFFF means never.</summary>
    public uint SessionExpiryInterval { get; init; }

    /// <summary>Receive Maximum; null when absent (then 65,535).</summary>
    public ushort? ReceiveMaximum { get; init; }

    /// <summary>Maximum Packet Size the client accepts; null when absent (no limit).</summary>
    public uint? MaximumPacketSize { get; init; }

    /// <summary>Topic Alias Maximum the client accepts from the server; 0 when absent.</summary>
    public ushort TopicAliasMaximum { get; init; }

    public bool RequestResponseInformation { get; init; }

    /// <summary>Request Problem Information; true when absent.</summary>
    public bool RequestProblemInformation { get; init; } = true;

    public string? AuthenticationMethod { get; init; }

    public ReadOnlyMemory<byte>? AuthenticationData { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;
}

/// <summary>CONNACK (MQTT-3.2 / MQTT-v5.0 3.2).</summary>
public sealed record MqttConnAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.ConnAck;

    public bool SessionPresent { get; init; }

    /// <summary>
    /// The reason code byte: a <see cref="MqttReasonCode"/> for v5, a <see cref="MqttConnectReturnCode"/> for 3.1.1.
    /// </summary>
    public byte ReasonCode { get; init; }

    // ---- MQTT 5.0 properties (MQTT-v5.0 3.2.2.3); null = absent ----
    public uint? SessionExpiryInterval { get; init; }

    public ushort? ReceiveMaximum { get; init; }

    public byte? MaximumQoS { get; init; }

    public bool? RetainAvailable { get; init; }

    public uint? MaximumPacketSize { get; init; }

    public string? AssignedClientIdentifier { get; init; }

    public ushort? TopicAliasMaximum { get; init; }

    public string? ReasonString { get; init; }

    public bool? WildcardSubscriptionAvailable { get; init; }

    public bool? SubscriptionIdentifiersAvailable { get; init; }

    public bool? SharedSubscriptionAvailable { get; init; }

    public ushort? ServerKeepAlive { get; init; }

    public string? ResponseInformation { get; init; }

    public string? ServerReference { get; init; }

    public string? AuthenticationMethod { get; init; }

    public ReadOnlyMemory<byte>? AuthenticationData { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;
}
