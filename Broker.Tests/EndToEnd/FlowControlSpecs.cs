using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Packets;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// Receive Maximum over QoS 2 (a slot is held from PUBLISH to PUBCOMP, MQTT-v5.0 4.9) and Mqtt:MaxKeepAlive, over
/// real TCP with the raw client (a well-behaved library never exceeds the quota).
/// </summary>
public sealed class FlowControlSpecs
{
    [Fact]
    public async Task More_unreleased_QoS2_publishes_than_Receive_Maximum_close_with_0x93_MQTT_3_3_4_9()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { ReceiveMaximum = 2 } });
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "qos2-greedy");
        Assert.Equal((ushort)2, connAck.ReceiveMaximum);

        // Two are within the quota and get PUBREC; the client never sends PUBREL, so they keep their slots.
        await client.SendAsync(Qos2(1));
        await client.SendAsync(Qos2(2));
        Assert.Equal(1, (await client.ExpectAsync<MqttPubRecPacket>()).PacketId);
        Assert.Equal(2, (await client.ExpectAsync<MqttPubRecPacket>()).PacketId);

        await client.SendAsync(Qos2(3));
        var packets = await client.ExpectClosedAsync();
        var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets));
        Assert.Equal(MqttReasonCode.ReceiveMaximumExceeded, disconnect.ReasonCode);
        await broker.AssertHealthyAsync(ClientVersion.V500);
    }

    [Fact]
    public async Task A_QoS2_slot_is_free_again_after_PUBCOMP()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { ReceiveMaximum = 2 } });
        var (client, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "qos2-polite");
        ushort id = 0;
        for (var round = 0; round < 3; round++)
        {
            ushort a = ++id, b = ++id;
            await client.SendAsync(Qos2(a));
            await client.SendAsync(Qos2(b));
            await client.ExpectAsync<MqttPubRecPacket>();
            await client.ExpectAsync<MqttPubRecPacket>();
            await client.SendAsync(new MqttPubRelPacket { PacketId = a });
            await client.SendAsync(new MqttPubRelPacket { PacketId = b });
            Assert.Equal(a, (await client.ExpectAsync<MqttPubCompPacket>()).PacketId);
            Assert.Equal(b, (await client.ExpectAsync<MqttPubCompPacket>()).PacketId);
        }

        // Six QoS 2 publishes through a quota of two: still connected.
        await client.SendAsync(MqttPingReqPacket.Instance);
        await client.ExpectAsync<MqttPingRespPacket>();
    }

    [Theory]
    [InlineData(0, (ushort)1)] // no keep alive: lowered to the maximum, and told
    [InlineData(60, (ushort)1)] // longer: lowered, and told
    [InlineData(1, null)] // not longer: stands, nothing said
    public async Task Max_keep_alive_lowers_a_v5_clients_keep_alive_and_says_so_in_CONNACK(ushort keepAlive, ushort? announced)
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxKeepAlive = 1 } });
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "max-ka-v5",
            c => c with { KeepAlive = keepAlive });
        await using var _ = client;
        Assert.Equal(announced, connAck.ServerKeepAlive);
        await AssertClosedForKeepAliveAsync(client, v5: true);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(60)]
    public async Task Max_keep_alive_holds_a_3_1_1_client_to_the_lower_value(ushort keepAlive)
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxKeepAlive = 1 } });
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V311, "max-ka-v311",
            c => c with { KeepAlive = keepAlive });
        await using var _ = client;
        Assert.Equal(0, connAck.ReasonCode);
        await AssertClosedForKeepAliveAsync(client, v5: false);
    }

    /// <summary>
    /// Silent client, 1 s keep alive: closed after one and a half periods [MQTT-3.1.2-24], counted from CONNECT; the
    /// clock here starts at CONNACK, which may come a few hundred milliseconds later (the session attaches first).
    /// </summary>
    private static async Task AssertClosedForKeepAliveAsync(RawMqttClient client, bool v5)
    {
        var clock = Stopwatch.StartNew();
        var packets = await client.ExpectClosedAsync(TimeSpan.FromSeconds(8));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.75), TimeSpan.FromSeconds(6));
        if (v5)
        {
            Assert.Equal(MqttReasonCode.KeepAliveTimeout, Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets)).ReasonCode);
        }
        else
        {
            Assert.Empty(packets);
        }
    }

    private static MqttPublishPacket Qos2(ushort packetId) => new()
    {
        Topic = "flow/qos2", Payload = new byte[] { (byte)packetId }, QoS = MqttQoS.ExactlyOnce, PacketId = packetId,
    };
}
