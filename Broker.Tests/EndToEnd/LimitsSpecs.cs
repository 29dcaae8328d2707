using System.Text;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.EndToEnd;

/// <summary>Limits a broker announces and enforces: receive maximum, the client's maximum packet size, max connections; and MQTT 3.1.</summary>
public sealed class LimitsSpecs
{
    [Fact]
    public async Task More_unacknowledged_QoS1_publishes_than_Receive_Maximum_close_with_0x93_MQTT_3_3_4_9()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { ReceiveMaximum = 2 } });
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "greedy");
        Assert.Equal((ushort)2, connAck.ReceiveMaximum);

        // Five QoS 1 publishes in one write: the broker has not acknowledged any when the third arrives.
        var frames = Enumerable.Range(1, 5).SelectMany(i => Broker.Protocol.Codec.MqttPacketEncoder.Encode(new MqttPublishPacket
        {
            Topic = "limits/rm", Payload = Encoding.UTF8.GetBytes($"m{i}"), QoS = MqttQoS.AtLeastOnce, PacketId = (ushort)i,
        }, MqttProtocolVersion.V500)).ToArray();
        await client.SendRawAsync(frames);

        var packets = await client.ExpectClosedAsync();
        var disconnect = Assert.IsType<MqttDisconnectPacket>(packets[^1]);
        Assert.Equal(MqttReasonCode.ReceiveMaximumExceeded, disconnect.ReasonCode);
        await broker.AssertHealthyAsync(MQTTnet.Formatter.MqttProtocolVersion.V500);
    }

    [Fact]
    public async Task A_message_larger_than_the_clients_Maximum_Packet_Size_is_not_sent_to_it_MQTT_3_1_2_25()
    {
        await using var broker = await BrokerHarness.StartAsync();
        var (subscriber, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "small-reader",
            c => c with { MaximumPacketSize = 100 });
        await subscriber.SubscribeAsync(1, "limits/size", MqttQoS.AtLeastOnce);

        var (publisher, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "big-writer");
        await publisher.SendAsync(new MqttPublishPacket
        {
            Topic = "limits/size", Payload = new byte[500], QoS = MqttQoS.AtLeastOnce, PacketId = 1,
        });
        await publisher.ExpectAsync<MqttPubAckPacket>();
        await publisher.SendAsync(new MqttPublishPacket
        {
            Topic = "limits/size", Payload = Encoding.UTF8.GetBytes("small"), QoS = MqttQoS.AtLeastOnce, PacketId = 2,
        });
        await publisher.ExpectAsync<MqttPubAckPacket>();

        // Only the small one arrives; the big one was discarded as if delivered (it does not block the window).
        var publish = await subscriber.ExpectAsync<MqttPublishPacket>();
        Assert.Equal("small", Encoding.UTF8.GetString(publish.Payload.Span));
        await subscriber.AssertSilentAsync(E2E.Quiet);
    }

    [Theory]
    [InlineData(ClientVersion.V311, (byte)MqttConnectReturnCode.ServerUnavailable)]
    [InlineData(ClientVersion.V500, (byte)MqttReasonCode.QuotaExceeded)]
    public async Task A_connection_beyond_Mqtt_MaxConnections_is_refused(ClientVersion version, byte expected)
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxConnections = 2 } });
        var (first, a) = await RawMqttClient.ConnectAsync(broker.Port, version, "first");
        var (second, b) = await RawMqttClient.ConnectAsync(broker.Port, version, "second");
        Assert.Equal(0, a.ReasonCode);
        Assert.Equal(0, b.ReasonCode);

        var (third, c) = await RawMqttClient.ConnectAsync(broker.Port, version, "third");
        Assert.Equal(expected, c.ReasonCode);
        await third.ExpectClosedAsync();

        // A slot freed is a slot available again.
        first.Abort();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (broker.Server.Context.Metrics.Connections > 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var (fourth, d) = await RawMqttClient.ConnectAsync(broker.Port, version, "fourth");
        Assert.Equal(0, d.ReasonCode);
        await fourth.DisposeAsync();
        await second.DisposeAsync();
    }

    [Fact]
    public async Task An_MQTT_3_1_MQIsdp_client_connects_subscribes_and_publishes()
    {
        await using var broker = await BrokerHarness.StartAsync();
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, (ClientVersion)3, "legacy-31");
        Assert.Equal(0, connAck.ReasonCode);
        await client.SubscribeAsync(1, "legacy/+", MqttQoS.ExactlyOnce);
        await client.SendAsync(new MqttPublishPacket
        {
            Topic = "legacy/x", Payload = Encoding.UTF8.GetBytes("hello 3.1"), QoS = MqttQoS.AtLeastOnce, PacketId = 7,
        });

        // PUBACK and the message itself, in either order.
        var first = await client.ReceiveAsync();
        var second = await client.ReceiveAsync();
        var publish = new[] { first, second }.OfType<MqttPublishPacket>().Single();
        Assert.Single(new[] { first, second }.OfType<MqttPubAckPacket>());
        Assert.Equal("hello 3.1", Encoding.UTF8.GetString(publish.Payload.Span));
        Assert.Equal(MqttQoS.AtLeastOnce, publish.QoS);
    }
}
