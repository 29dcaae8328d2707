using System.Buffers;
using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Xunit;

namespace Broker.Tests.Protocol;

/// <summary>Shared helpers for the codec specs: hex parsing, round-trip assertion and sample packets.</summary>
internal static class CodecTestKit
{
    public const int MaxPacketSize = 1 << 20;

    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    public static MqttPacketDecoder NewDecoder(MqttProtocolVersion version) =>
        new(MaxPacketSize) { ProtocolVersion = version };

    /// <summary>Decodes exactly one whole frame and asserts nothing is left over.</summary>
    public static MqttPacket DecodeFrame(byte[] frame, MqttProtocolVersion version)
    {
        var decoder = NewDecoder(version);
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.True(decoder.TryDecode(ref buffer, out var packet));
        Assert.Equal(0, buffer.Length);
        return packet!;
    }

    /// <summary>
    /// decode(encode(p)) equals p where the record's equality is structural; and always encode(decode(encode(p)))
    /// is byte-equal to encode(p), which covers records that compare ImmutableArray/ReadOnlyMemory by reference.
    /// </summary>
    public static MqttPacket AssertRoundTrip(MqttPacket packet, MqttProtocolVersion version)
    {
        var bytes = MqttPacketEncoder.Encode(packet, version);
        Assert.Equal(bytes.Length, MqttPacketEncoder.GetSize(packet, version));
        var decoded = DecodeFrame(bytes, version);
        Assert.Equal(packet.GetType(), decoded.GetType());
        Assert.Equal(Convert.ToHexString(bytes), Convert.ToHexString(MqttPacketEncoder.Encode(decoded, version)));
        if (HasStructuralEquality(packet))
        {
            Assert.Equal(packet, decoded);
        }

        return decoded;
    }

    private static bool HasStructuralEquality(MqttPacket packet) => packet switch
    {
        MqttPublishPacket or MqttSubscribePacket or MqttSubAckPacket or MqttUnsubscribePacket or
            MqttUnsubAckPacket or MqttPingReqPacket or MqttPingRespPacket => true,
        MqttPublishAckPacket ack => ack.UserProperties.IsEmpty,
        MqttDisconnectPacket d => d.UserProperties.IsEmpty,
        _ => false,
    };

    public static readonly ImmutableArray<MqttUserProperty> UserProps =
        [new("region", "eu-west"), new("trace", "a1b2"), new("region", "dup-allowed")];

    public static readonly MqttMessageProperties FullMessageProperties = new()
    {
        PayloadFormatIndicator = 1,
        MessageExpiryInterval = 3600,
        ContentType = "application/json",
        ResponseTopic = "reply/to/me",
        CorrelationData = new byte[] { 1, 2, 3, 4 },
        UserProperties = UserProps,
    };

    public static MqttConnectPacket FullV5Connect() => new()
    {
        ProtocolVersion = MqttProtocolVersion.V500,
        ClientId = "client-ü-1",
        CleanStart = false,
        KeepAlive = 60,
        Username = "user",
        Password = new byte[] { 9, 8, 7 },
        Will = new MqttWill
        {
            Topic = "will/topic",
            Payload = new byte[] { 0xDE, 0xAD },
            QoS = MqttQoS.ExactlyOnce,
            Retain = true,
            DelayInterval = 30,
            Properties = FullMessageProperties,
        },
        SessionExpiryInterval = 0xFFFFFFFF,
        ReceiveMaximum = 100,
        MaximumPacketSize = 65536,
        TopicAliasMaximum = 10,
        RequestResponseInformation = true,
        RequestProblemInformation = false,
        AuthenticationMethod = "SCRAM-SHA-1",
        AuthenticationData = new byte[] { 0x01, 0x02 },
        UserProperties = UserProps,
    };

    public static MqttConnAckPacket FullV5ConnAck() => new()
    {
        SessionPresent = true,
        ReasonCode = 0,
        SessionExpiryInterval = 120,
        ReceiveMaximum = 20,
        MaximumQoS = 1,
        RetainAvailable = false,
        MaximumPacketSize = 1000,
        AssignedClientIdentifier = "auto-123",
        TopicAliasMaximum = 5,
        ReasonString = "welcome",
        WildcardSubscriptionAvailable = true,
        SubscriptionIdentifiersAvailable = false,
        SharedSubscriptionAvailable = true,
        ServerKeepAlive = 30,
        ResponseInformation = "resp/",
        ServerReference = "other:1883",
        AuthenticationMethod = "SCRAM-SHA-1",
        AuthenticationData = new byte[] { 5 },
        UserProperties = UserProps,
    };
}
