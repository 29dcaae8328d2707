using System.Collections.Immutable;

namespace Broker.Protocol.Packets;

/// <summary>PINGREQ; it has no content, so there is one instance.</summary>
public sealed record MqttPingReqPacket : MqttPacket
{
    public static readonly MqttPingReqPacket Instance = new();

    public override MqttPacketType Type => MqttPacketType.PingReq;
}

/// <summary>PINGRESP; it has no content, so there is one instance.</summary>
public sealed record MqttPingRespPacket : MqttPacket
{
    public static readonly MqttPingRespPacket Instance = new();

    public override MqttPacketType Type => MqttPacketType.PingResp;
}

/// <summary>DISCONNECT (MQTT-3.14 / MQTT-v5.0 3.14); in 3.1.1 it has no content.</summary>
public sealed record MqttDisconnectPacket : MqttPacket
{
    public static readonly MqttDisconnectPacket Normal = new();

    public override MqttPacketType Type => MqttPacketType.Disconnect;

    public MqttReasonCode ReasonCode { get; init; } = MqttReasonCode.NormalDisconnection;

    /// <summary>v5 Session Expiry Interval; null when absent.</summary>
    public uint? SessionExpiryInterval { get; init; }

    public string? ReasonString { get; init; }

    public string? ServerReference { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;
}

/// <summary>AUTH (MQTT-v5.0 3.15), v5 only.</summary>
public sealed record MqttAuthPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Auth;

    public MqttReasonCode ReasonCode { get; init; } = MqttReasonCode.Success;

    public string? AuthenticationMethod { get; init; }

    public ReadOnlyMemory<byte>? AuthenticationData { get; init; }

    public string? ReasonString { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;
}
