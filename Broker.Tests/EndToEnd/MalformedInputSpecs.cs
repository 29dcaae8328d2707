using Broker.Configuration;
using Broker.Protocol.Packets;
using MQTTnet.Formatter;
using BrokerQoS = Broker.Protocol.MqttQoS;
using BrokerReason = Broker.Protocol.MqttReasonCode;

namespace Broker.Tests.EndToEnd;

/// <summary>A broker that accepts packets of at most 2 KiB.</summary>
public sealed class SmallPacketBrokerFixture : BrokerFixture
{
    public const int MaxPacketSize = 2048;

    protected override BrokerOptions Configure(BrokerOptions options) =>
        options with { Mqtt = options.Mqtt with { MaxPacketSize = MaxPacketSize } };
}

/// <summary>
/// Malformed or illegal input over a raw socket: the offending connection gets a v5 DISCONNECT with the reason code
/// (3.1.1: a plain close) and is closed; the broker keeps serving everybody else.
/// </summary>
public sealed class MalformedInputSpecs(SmallPacketBrokerFixture fixture) : IClassFixture<SmallPacketBrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    /// <summary>Connects a raw client, lets it misbehave, and asserts the close, the reason and the broker's health.</summary>
    private async Task AssertConnectionClosedAsync(
        MqttProtocolVersion version, Func<RawMqttClient, Task> misbehave, BrokerReason expectedV5Reason)
    {
        var (raw, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, E2E.Id("bad", version));
        await using var _ = raw;
        Assert.Equal(0, connAck.ReasonCode);
        await misbehave(raw);

        var packets = await raw.ExpectClosedAsync();
        if (version == MqttProtocolVersion.V500)
        {
            var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets));
            Assert.Equal(expectedV5Reason, disconnect.ReasonCode);
        }
        else
        {
            Assert.Empty(packets);
        }

        await _broker.AssertHealthyAsync(version);
    }

    private static bool V5(RawMqttClient raw) => raw.Version == Broker.Protocol.MqttProtocolVersion.V500;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Remaining_length_longer_than_four_bytes_closes_with_malformed_packet_MQTT_1_5_5_1(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw => raw.SendRawAsync([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), BrokerReason.MalformedPacket);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Reserved_fixed_header_flags_close_with_malformed_packet_MQTT_2_2_2_2(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw => raw.SendRawAsync([0xC1, 0x00]), BrokerReason.MalformedPacket);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Ill_formed_UTF8_in_a_topic_name_closes_with_malformed_packet_MQTT_1_5_3_1(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw =>
        {
            // PUBLISH QoS 0, topic bytes C3 28 (an invalid two-byte sequence), payload "x".
            byte[] body = V5(raw) ? [0x00, 0x02, 0xC3, 0x28, 0x00, (byte)'x'] : [0x00, 0x02, 0xC3, 0x28, (byte)'x'];
            return raw.SendRawAsync([0x30, (byte)body.Length, .. body]);
        }, BrokerReason.MalformedPacket);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Wildcard_in_a_PUBLISH_topic_closes_with_topic_name_invalid_MQTT_3_3_2_2(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw => raw.SendAsync(new MqttPublishPacket { Topic = "a/+", Payload = "x"u8.ToArray() }),
            BrokerReason.TopicNameInvalid);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Second_CONNECT_closes_with_protocol_error_MQTT_3_1_0_2(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw => raw.SendAsync(new MqttConnectPacket
        {
            ProtocolVersion = raw.Version,
            ClientId = "again",
        }), BrokerReason.ProtocolError);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Packet_above_Mqtt_MaxPacketSize_closes_with_packet_too_large(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw => raw.SendAsync(new MqttPublishPacket
        {
            Topic = "big",
            Payload = new byte[SmallPacketBrokerFixture.MaxPacketSize + 100],
        }), BrokerReason.PacketTooLarge);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public Task Packet_identifier_0_on_a_QoS_1_PUBLISH_closes_with_protocol_error_MQTT_2_3_1_1(MqttProtocolVersion version) =>
        AssertConnectionClosedAsync(version, raw => raw.SendAsync(new MqttPublishPacket
        {
            Topic = "zero",
            QoS = BrokerQoS.AtLeastOnce,
            PacketId = 0,
            Payload = "x"u8.ToArray(),
        }), BrokerReason.ProtocolError);

    [Fact]
    public Task V5_topic_alias_0_closes_with_topic_alias_invalid_MQTT_3_3_2_8() =>
        AssertConnectionClosedAsync(MqttProtocolVersion.V500, raw =>
        {
            // PUBLISH QoS 0, topic "a", properties: Topic Alias (0x23) = 0, payload "x".
            byte[] body = [0x00, 0x01, (byte)'a', 0x03, 0x23, 0x00, 0x00, (byte)'x'];
            return raw.SendRawAsync([0x30, (byte)body.Length, .. body]);
        }, BrokerReason.TopicAliasInvalid);

    [Fact]
    public Task V5_topic_alias_above_the_announced_maximum_closes_with_topic_alias_invalid_MQTT_3_3_2_10() =>
        AssertConnectionClosedAsync(MqttProtocolVersion.V500, raw => raw.SendAsync(new MqttPublishPacket
        {
            Topic = "a",
            TopicAlias = 65,
            Payload = "x"u8.ToArray(),
        }), BrokerReason.TopicAliasInvalid);

    [Fact]
    public Task V5_topic_alias_that_was_never_set_closes_with_protocol_error() =>
        AssertConnectionClosedAsync(MqttProtocolVersion.V500, raw => raw.SendAsync(new MqttPublishPacket
        {
            Topic = "",
            TopicAlias = 3,
            Payload = "x"u8.ToArray(),
        }), BrokerReason.ProtocolError);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task First_packet_other_than_CONNECT_closes_the_connection_without_CONNACK_MQTT_3_1_0_1(MqttProtocolVersion version)
    {
        await using (var raw = await RawMqttClient.OpenAsync(_broker.Port, version))
        {
            await raw.SendAsync(MqttPingReqPacket.Instance);
            Assert.Empty(await raw.ExpectClosedAsync());
        }

        await _broker.AssertHealthyAsync(version);
    }
}
