using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Xunit;
using static Broker.Tests.Protocol.CodecTestKit;

namespace Broker.Tests.Protocol;

/// <summary>Every packet type, per protocol version: decode(encode(p)) is p, and the bytes are what the spec says.</summary>
public sealed class MqttCodecRoundTripSpecs
{
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V500 = MqttProtocolVersion.V500;

    public static TheoryData<string, MqttPacket, MqttProtocolVersion> Packets()
    {
        var data = new TheoryData<string, MqttPacket, MqttProtocolVersion>();
        foreach (var version in new[] { V311, V500 })
        {
            var v = version == V500 ? "v5" : "v311";
            data.Add($"{v} minimal CONNECT", new MqttConnectPacket { ProtocolVersion = version, ClientId = "c1" }, version);
            data.Add($"{v} CONNECT with will and credentials", new MqttConnectPacket
            {
                ProtocolVersion = version,
                ClientId = "c2",
                CleanStart = false,
                KeepAlive = 65535,
                Username = "u",
                Password = new byte[] { 1, 2 },
                Will = new MqttWill { Topic = "w/t", Payload = new byte[] { 3 }, QoS = MqttQoS.AtLeastOnce, Retain = true },
            }, version);
            data.Add($"{v} CONNACK", new MqttConnAckPacket { SessionPresent = true, ReasonCode = 0 }, version);
            data.Add($"{v} PUBLISH QoS0", new MqttPublishPacket { Topic = "a/b", Payload = new byte[] { 1, 2, 3 } }, version);
            data.Add($"{v} PUBLISH QoS1 retained dup", new MqttPublishPacket
            {
                Topic = "a/ü/c", Payload = new byte[200], QoS = MqttQoS.AtLeastOnce, PacketId = 7, Retain = true, Dup = true,
            }, version);
            data.Add($"{v} PUBLISH QoS2 empty payload", new MqttPublishPacket
            {
                Topic = "x", QoS = MqttQoS.ExactlyOnce, PacketId = 65535,
            }, version);
            data.Add($"{v} PUBACK", new MqttPubAckPacket { PacketId = 1 }, version);
            data.Add($"{v} PUBREC", new MqttPubRecPacket { PacketId = 2 }, version);
            data.Add($"{v} PUBREL", new MqttPubRelPacket { PacketId = 3 }, version);
            data.Add($"{v} PUBCOMP", new MqttPubCompPacket { PacketId = 4 }, version);
            data.Add($"{v} SUBSCRIBE", new MqttSubscribePacket
            {
                PacketId = 10,
                Subscriptions =
                [
                    new MqttTopicSubscription { TopicFilter = "a/+", QoS = MqttQoS.AtLeastOnce },
                    new MqttTopicSubscription { TopicFilter = "#", QoS = MqttQoS.ExactlyOnce },
                ],
            }, version);
            data.Add($"{v} SUBACK", new MqttSubAckPacket
            {
                PacketId = 10,
                ReasonCodes = [MqttReasonCode.GrantedQoS0, MqttReasonCode.GrantedQoS1, MqttReasonCode.GrantedQoS2, MqttReasonCode.UnspecifiedError],
            }, version);
            data.Add($"{v} UNSUBSCRIBE", new MqttUnsubscribePacket { PacketId = 11, TopicFilters = ["a/+", "b"] }, version);
            data.Add($"{v} PINGREQ", MqttPingReqPacket.Instance, version);
            data.Add($"{v} PINGRESP", MqttPingRespPacket.Instance, version);
            data.Add($"{v} DISCONNECT", MqttDisconnectPacket.Normal, version);
        }

        data.Add("v311 UNSUBACK", new MqttUnsubAckPacket { PacketId = 12 }, V311);
        data.Add("v310 CONNECT", new MqttConnectPacket
        {
            ProtocolName = "MQIsdp", ProtocolVersion = MqttProtocolVersion.V310, ClientId = "old", Username = "u", Password = new byte[] { 1 },
        }, MqttProtocolVersion.V310);

        // MQTT 5.0 with every property populated somewhere.
        data.Add("v5 CONNECT with every property", FullV5Connect(), V500);
        data.Add("v5 CONNECT password without user name", new MqttConnectPacket
        {
            ProtocolVersion = V500, ClientId = "p", Password = new byte[] { 1 },
        }, V500);
        data.Add("v5 CONNACK with every property", FullV5ConnAck(), V500);
        data.Add("v5 PUBLISH with every property", new MqttPublishPacket
        {
            Topic = "t/1",
            Payload = new byte[] { 42 },
            QoS = MqttQoS.AtLeastOnce,
            PacketId = 99,
            TopicAlias = 3,
            SubscriptionIdentifiers = [1, 268_435_455, 128],
            Properties = FullMessageProperties,
        }, V500);
        data.Add("v5 PUBLISH alias only", new MqttPublishPacket { Topic = "", TopicAlias = 1, Payload = new byte[] { 1 } }, V500);
        data.Add("v5 PUBACK with reason and properties", new MqttPubAckPacket
        {
            PacketId = 5, ReasonCode = MqttReasonCode.NoMatchingSubscribers, ReasonString = "nobody", UserProperties = UserProps,
        }, V500);
        data.Add("v5 PUBREC reason only", new MqttPubRecPacket { PacketId = 6, ReasonCode = MqttReasonCode.QuotaExceeded }, V500);
        data.Add("v5 PUBREL not found", new MqttPubRelPacket { PacketId = 7, ReasonCode = MqttReasonCode.PacketIdentifierNotFound }, V500);
        data.Add("v5 PUBCOMP with reason string", new MqttPubCompPacket { PacketId = 8, ReasonString = "done" }, V500);
        data.Add("v5 SUBSCRIBE with options and properties", new MqttSubscribePacket
        {
            PacketId = 13,
            SubscriptionIdentifier = 77,
            UserProperties = UserProps,
            Subscriptions =
            [
                new MqttTopicSubscription
                {
                    TopicFilter = "$share/g/a/#", QoS = MqttQoS.ExactlyOnce, NoLocal = true, RetainAsPublished = true,
                    RetainHandling = MqttRetainHandling.DoNotSend,
                },
                new MqttTopicSubscription { TopicFilter = "b", RetainHandling = MqttRetainHandling.SendAtSubscribeIfNew },
            ],
        }, V500);
        data.Add("v5 SUBACK with properties", new MqttSubAckPacket
        {
            PacketId = 13, ReasonCodes = [MqttReasonCode.GrantedQoS2, MqttReasonCode.SharedSubscriptionsNotSupported],
            ReasonString = "partial", UserProperties = UserProps,
        }, V500);
        data.Add("v5 UNSUBSCRIBE with properties", new MqttUnsubscribePacket
        {
            PacketId = 14, TopicFilters = ["a"], UserProperties = UserProps,
        }, V500);
        data.Add("v5 UNSUBACK", new MqttUnsubAckPacket
        {
            PacketId = 14, ReasonCodes = [MqttReasonCode.Success, MqttReasonCode.NoSubscriptionExisted],
            ReasonString = "ok", UserProperties = UserProps,
        }, V500);
        data.Add("v5 DISCONNECT with every property", new MqttDisconnectPacket
        {
            ReasonCode = MqttReasonCode.ServerMoved, SessionExpiryInterval = 10, ReasonString = "moving",
            ServerReference = "b:1883", UserProperties = UserProps,
        }, V500);
        data.Add("v5 DISCONNECT reason only", new MqttDisconnectPacket { ReasonCode = MqttReasonCode.DisconnectWithWillMessage }, V500);
        data.Add("v5 AUTH short form", new MqttAuthPacket(), V500);
        data.Add("v5 AUTH with every property", new MqttAuthPacket
        {
            ReasonCode = MqttReasonCode.ContinueAuthentication, AuthenticationMethod = "SCRAM-SHA-1",
            AuthenticationData = new byte[] { 1, 2, 3 }, ReasonString = "go on", UserProperties = UserProps,
        }, V500);
        return data;
    }

    [Theory]
    [MemberData(nameof(Packets))]
    public void Decoding_an_encoded_packet_should_give_the_packet_back(string name, MqttPacket packet, MqttProtocolVersion version)
    {
        Assert.NotNull(name);
        AssertRoundTrip(packet, version);
    }

    [Fact]
    public void Full_v5_connect_should_keep_every_field()
    {
        var decoded = (MqttConnectPacket)AssertRoundTrip(FullV5Connect(), V500);
        var expected = FullV5Connect();
        Assert.Equal(expected with
        {
            Password = decoded.Password,
            AuthenticationData = decoded.AuthenticationData,
            UserProperties = decoded.UserProperties,
        }, decoded);
        Assert.Equal(expected.Password!.Value.ToArray(), decoded.Password!.Value.ToArray());
        Assert.Equal(expected.AuthenticationData!.Value.ToArray(), decoded.AuthenticationData!.Value.ToArray());
        Assert.Equal(expected.UserProperties, decoded.UserProperties.ToArray());
        Assert.Equal(expected.Will, decoded.Will);
    }

    [Fact]
    public void V311_publish_should_have_the_spec_byte_layout_without_v5_fields()
    {
        var publish = new MqttPublishPacket
        {
            Topic = "t", QoS = MqttQoS.AtLeastOnce, PacketId = 1, TopicAlias = 4, Properties = FullMessageProperties,
            Payload = new byte[] { 0xAA },
        };
        // 0x32 = PUBLISH QoS1; RL 6; topic length 1 "t"; packet id 1; payload AA. No properties in 3.1.1.
        Assert.Equal("320600017400" + "01AA", Convert.ToHexString(MqttPacketEncoder.Encode(publish, V311)));
    }

    [Theory]
    [InlineData("40020005", "PUBACK")]
    [InlineData("62020005", "PUBREL")]
    [InlineData("E000", "DISCONNECT")]
    [InlineData("F000", "AUTH")]
    public void V5_success_acknowledgements_should_use_the_short_form(string hex, string name)
    {
        MqttPacket packet = name switch
        {
            "PUBACK" => new MqttPubAckPacket { PacketId = 5 },
            "PUBREL" => new MqttPubRelPacket { PacketId = 5 },
            "DISCONNECT" => MqttDisconnectPacket.Normal,
            _ => new MqttAuthPacket(),
        };
        Assert.Equal(hex, Convert.ToHexString(MqttPacketEncoder.Encode(packet, V500)));
        Assert.Equal(packet.Type, DecodeFrame(Hex(hex), V500).Type);
    }

    [Fact]
    public void V311_unsuback_should_carry_only_the_packet_id()
    {
        var bytes = MqttPacketEncoder.Encode(
            new MqttUnsubAckPacket { PacketId = 3, ReasonCodes = [MqttReasonCode.Success] }, V311);
        Assert.Equal("B0020003", Convert.ToHexString(bytes));
    }

    [Fact]
    public void Decoding_connect_should_switch_the_decoder_to_its_protocol_level()
    {
        var decoder = NewDecoder(V311);
        var bytes = MqttPacketEncoder.Encode(new MqttConnectPacket { ProtocolVersion = V500, ClientId = "x" }, V500);
        var buffer = new System.Buffers.ReadOnlySequence<byte>(bytes);
        Assert.True(decoder.TryDecode(ref buffer, out _));
        Assert.Equal(V500, decoder.ProtocolVersion);
    }

    [Fact]
    public void Decoded_payload_should_not_alias_the_input_buffer()
    {
        var bytes = MqttPacketEncoder.Encode(new MqttPublishPacket { Topic = "t", Payload = new byte[] { 1, 2 } }, V311);
        var decoded = (MqttPublishPacket)DecodeFrame(bytes, V311);
        Array.Clear(bytes);
        Assert.Equal(new byte[] { 1, 2 }, decoded.Payload.ToArray());
    }
}
