using System.Net;
using System.Net.Sockets;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Protocol;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Robustness;

/// <summary>A subscriber that stops reading cannot make the broker buffer without bound (DESIGN promise 6).</summary>
public sealed class SlowConsumerSpecs
{
    [Fact]
    public async Task QoS0_to_a_subscriber_that_stopped_reading_is_dropped_and_counted_not_buffered()
    {
        await using var broker = await BrokerHarness.StartAsync();

        // The stuck subscriber: a raw socket with a small receive buffer that subscribes and then never reads.
        using var stuck = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await stuck.ConnectAsync(IPAddress.Loopback, broker.Port);
        await stuck.SendAsync(MqttPacketEncoder.Encode(new MqttConnectPacket { ClientId = "stuck", ProtocolVersion = MqttProtocolVersion.V311 }, MqttProtocolVersion.V311));
        await stuck.SendAsync(MqttPacketEncoder.Encode(new MqttSubscribePacket
        {
            PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = "flood/#", QoS = MqttQoS.AtMostOnce }],
        }, MqttProtocolVersion.V311));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (broker.Server.Context.Metrics.Connections < 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var healthy = await broker.ConnectAsync(ClientVersion.V311, "healthy");
        var received = new MessageCollector(healthy);
        await healthy.SubscribeAsync("flood/end", MqttQualityOfServiceLevel.AtLeastOnce);

        // 20,000 x 4 KB = 80 MB at QoS 0 towards the stuck client.
        GC.Collect();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        using var publisher = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await publisher.ConnectAsync(IPAddress.Loopback, broker.Port);
        await publisher.SendAsync(MqttPacketEncoder.Encode(new MqttConnectPacket { ClientId = "flooder", ProtocolVersion = MqttProtocolVersion.V311 }, MqttProtocolVersion.V311));
        var frame = MqttPacketEncoder.Encode(new MqttPublishPacket { Topic = "flood/x", Payload = new byte[4096] }, MqttProtocolVersion.V311);
        var batch = Enumerable.Range(0, 100).SelectMany(_ => frame).ToArray();
        for (var i = 0; i < 200; i++)
        {
            await publisher.SendAsync(batch);
        }

        // The broker keeps serving: a message published after the flood reaches the healthy client.
        await healthy.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("flood/end").WithPayload("still here")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var messages = await received.WaitForAsync(1, TimeSpan.FromSeconds(30));
        Assert.Equal("still here", Encoding.UTF8.GetString(messages[0].Payload));

        deadline = DateTime.UtcNow.AddSeconds(20);
        while (broker.Server.Context.Metrics.MessagesIn < 20_000 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(broker.Server.Context.Metrics.MessagesIn >= 20_000, $"only {broker.Server.Context.Metrics.MessagesIn} publishes were read");
        var grown = GC.GetTotalMemory(forceFullCollection: true) - before;
        Assert.True(grown < 40 * 1024 * 1024, $"the broker kept {grown / (1024 * 1024)} MB after an 80 MB flood to a stuck client");
        Assert.True(broker.Server.Context.Metrics.DroppedSlowConsumer > 0, "nothing was counted as dropped for the stuck subscriber");
    }
}
