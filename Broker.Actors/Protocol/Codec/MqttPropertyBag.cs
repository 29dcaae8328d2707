using System.Collections.Immutable;
using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

/// <summary>
/// Scratch holder for one v5 property block while a packet is decoded: every property the spec defines as a nullable
/// field, filled by <see cref="MqttPropertyReader"/> and then copied into the immutable packet record. A struct, so a
/// PUBLISH without properties costs no allocation.
/// </summary>
internal struct MqttPropertyBag
{
    public byte? PayloadFormatIndicator;
    public uint? MessageExpiryInterval;
    public string? ContentType;
    public string? ResponseTopic;
    public byte[]? CorrelationData;
    public ImmutableArray<uint>.Builder? SubscriptionIdentifiers;
    public uint? SessionExpiryInterval;
    public string? AssignedClientIdentifier;
    public ushort? ServerKeepAlive;
    public string? AuthenticationMethod;
    public byte[]? AuthenticationData;
    public byte? RequestProblemInformation;
    public uint? WillDelayInterval;
    public byte? RequestResponseInformation;
    public string? ResponseInformation;
    public string? ServerReference;
    public string? ReasonString;
    public ushort? ReceiveMaximum;
    public ushort? TopicAliasMaximum;
    public ushort? TopicAlias;
    public byte? MaximumQoS;
    public byte? RetainAvailable;
    public ImmutableArray<MqttUserProperty>.Builder? UserProperties;
    public uint? MaximumPacketSize;
    public byte? WildcardSubscriptionAvailable;
    public byte? SubscriptionIdentifierAvailable;
    public byte? SharedSubscriptionAvailable;

    public readonly ImmutableArray<MqttUserProperty> UserPropertiesOrEmpty =>
        UserProperties is null ? ImmutableArray<MqttUserProperty>.Empty : UserProperties.ToImmutable();

    public readonly ImmutableArray<uint> SubscriptionIdentifiersOrEmpty =>
        SubscriptionIdentifiers is null ? ImmutableArray<uint>.Empty : SubscriptionIdentifiers.ToImmutable();

    /// <summary>A null array stays null (the implicit array conversion would turn it into an empty memory).</summary>
    public static ReadOnlyMemory<byte>? AsMemory(byte[]? bytes) =>
        bytes is null ? (ReadOnlyMemory<byte>?)null : new ReadOnlyMemory<byte>(bytes);

    /// <summary>The application-message properties of PUBLISH and the will (MQTT-v5.0 3.3.2.3).</summary>
    public readonly MqttMessageProperties ToMessageProperties()
    {
        if (PayloadFormatIndicator is null && MessageExpiryInterval is null && ContentType is null &&
            ResponseTopic is null && CorrelationData is null && UserProperties is null)
        {
            return MqttMessageProperties.Empty;
        }

        return new MqttMessageProperties
        {
            PayloadFormatIndicator = PayloadFormatIndicator,
            MessageExpiryInterval = MessageExpiryInterval,
            ContentType = ContentType,
            ResponseTopic = ResponseTopic,
            CorrelationData = AsMemory(CorrelationData),
            UserProperties = UserPropertiesOrEmpty,
        };
    }
}
