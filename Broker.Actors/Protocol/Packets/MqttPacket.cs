using System.Collections.Immutable;

namespace Broker.Protocol.Packets;

/// <summary>
/// Base of the immutable packet records. Packets never hold pooled buffers: the transport copies bytes out of
/// DotNetty's buffers before a packet is built. Fields that only exist in MQTT 5.0 are ignored by the 3.1.1 encoder.
/// </summary>
public abstract record MqttPacket
{
    public abstract MqttPacketType Type { get; }
}

/// <summary>A v5 user property (a UTF-8 string pair); order and duplicates are preserved (MQTT-v5.0 3.3.2.3.7).</summary>
public readonly record struct MqttUserProperty(string Name, string Value);

/// <summary>
/// The application-message properties of MQTT 5.0 that a server forwards unchanged from publisher to subscribers
/// (MQTT-v5.0 3.3.2.3): payload format indicator, message expiry, content type, response topic, correlation data and
/// user properties. Shared by PUBLISH and the will message.
/// </summary>
public sealed record MqttMessageProperties
{
    public static readonly MqttMessageProperties Empty = new();

    /// <summary>0 = unspecified bytes, 1 = UTF-8 character data; null when absent.</summary>
    public byte? PayloadFormatIndicator { get; init; }

    /// <summary>Lifetime of the message in seconds; null when absent (the message does not expire).</summary>
    public uint? MessageExpiryInterval { get; init; }

    public string? ContentType { get; init; }

    public string? ResponseTopic { get; init; }

    public ReadOnlyMemory<byte>? CorrelationData { get; init; }

    public ImmutableArray<MqttUserProperty> UserProperties { get; init; } = ImmutableArray<MqttUserProperty>.Empty;

    public bool IsEmpty =>
        PayloadFormatIndicator is null && MessageExpiryInterval is null && ContentType is null &&
        ResponseTopic is null && CorrelationData is null && UserProperties.IsDefaultOrEmpty;

    public bool Equals(MqttMessageProperties? other) =>
        other is not null &&
        PayloadFormatIndicator == other.PayloadFormatIndicator &&
        MessageExpiryInterval == other.MessageExpiryInterval &&
        ContentType == other.ContentType &&
        ResponseTopic == other.ResponseTopic &&
        BytesEqual(CorrelationData, other.CorrelationData) &&
        UserProperties.AsSpan().SequenceEqual(other.UserProperties.AsSpan());

    public override int GetHashCode() => HashCode.Combine(ContentType, ResponseTopic, MessageExpiryInterval);

    private static bool BytesEqual(ReadOnlyMemory<byte>? a, ReadOnlyMemory<byte>? b) =>
        a is null ? b is null : b is not null && a.Value.Span.SequenceEqual(b.Value.Span);
}
