using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using BrokerQoS = Broker.Protocol.MqttQoS;
using MqttReasonCode = Broker.Protocol.MqttReasonCode;

namespace Broker.Tests.FlowControl;

/// <summary>
/// How a full queue slows its publishers, beyond their acknowledgements. Real broker, real TCP.
/// <list type="bullet">
/// <item>A QoS 2 publisher held by a full queue is not read from, as a QoS 1 publisher is: a PINGREQ it sends while
/// held is answered only after the hold ends (one may slip through: a read already under way completes).</item>
/// <item>A clean subscriber's session host confirms for it only while its queue has room in payload bytes too
/// (Sessions:MaxQueuedBytes): a burst of large messages into a subscriber that stopped reading is taken up to the bound
/// and the rest refused (0x97), never acknowledged and then dropped for overflowing.</item>
/// </list>
/// </summary>
public sealed class HeldPublisherSpecs
{
    [Fact]
    public async Task A_QoS2_publisher_held_by_a_full_queue_should_not_be_read_from_until_the_hold_ends()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Sessions = o.Sessions with { MaxQueuedMessages = 2, MaxPublisherHold = 2 },
        });
        var id = E2E.Id("held-qos2", MqttProtocolVersion.V500);
        var (offline, _, _) = await broker.ConnectPersistentAsync(MqttProtocolVersion.V500, id);
        await offline.SubscribeAsync(id + "/t", MqttQualityOfServiceLevel.AtLeastOnce);
        await offline.DisconnectAsync();

        var (publisher, _) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, id + "-pub", c => c with { KeepAlive = 0 });
        await using var _ = publisher;
        for (ushort packetId = 1; packetId <= 2; packetId++)
        {
            await publisher.SendAsync(Publish(id, packetId));
            Assert.Equal((packetId, MqttReasonCode.Success), Answer(await publisher.ExpectAsync<MqttPubRecPacket>()));
        }

        // The queue is full: the third is held, and its publisher with it.
        await publisher.SendAsync(Publish(id, 3));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (broker.Server.Context.Metrics.PublisherHolds == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(1, broker.Server.Context.Metrics.PublisherHolds);
        await publisher.SendAsync(new MqttPingReqPacket());
        await Task.Delay(300); // two reads, not one: the first may complete a read already under way
        await publisher.SendAsync(new MqttPingReqPacket());

        var beforeAnswer = 0;
        MqttPacket? packet;
        while ((packet = await publisher.ReceiveAsync(TimeSpan.FromSeconds(20))) is MqttPingRespPacket)
        {
            beforeAnswer++;
        }

        // The hold ran out: refused (the queue never drained), and only then was the publisher read again.
        Assert.Equal((3, MqttReasonCode.QuotaExceeded), Answer(Assert.IsType<MqttPubRecPacket>(packet)));
        Assert.True(beforeAnswer <= 1, $"{beforeAnswer} PINGREQs sent while held were answered before the hold ended");
        for (var i = beforeAnswer; i < 2; i++)
        {
            await publisher.ExpectAsync<MqttPingRespPacket>();
        }
    }

    [Fact]
    public async Task A_clean_subscribers_queue_should_be_bounded_by_bytes_when_its_host_confirms_for_it()
    {
        const int payload = 200 * 1024;
        const long maxBytes = 1024 * 1024;
        const int inflight = 2;
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Sessions = o.Sessions with { MaxQueuedMessages = 1000, MaxQueuedBytes = maxBytes, MaxInflight = inflight, MaxPublisherHold = 1 },
        });
        var (stuck, _) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, "bytes-stuck", c => c with { KeepAlive = 0 });
        await using var _ = stuck;
        await stuck.SubscribeAsync(1, "bytes/t", BrokerQoS.AtLeastOnce); // and never reads again

        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "bytes-pub");
        var results = await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
        {
            var body = new byte[payload];
            body[0] = (byte)i;
            return publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("bytes/t").WithPayload(body)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }));

        var metrics = broker.Server.Context.Metrics;
        var taken = results.Count(r => r.ReasonCode == MqttClientPublishReasonCode.Success);
        Assert.All(results, r => Assert.Contains(r.ReasonCode, new[] { MqttClientPublishReasonCode.Success, MqttClientPublishReasonCode.QuotaExceeded }));
        Assert.Equal(0, metrics.DroppedOverflow); // nothing acknowledged was dropped
        Assert.Equal(24 - taken, metrics.RefusedQueueFull);

        // Taken: the in-flight window, then the queue up to its byte bound (the message that crosses it included),
        // and at most one more confirmed by the host as the session updated its gauge.
        var fits = (int)((maxBytes + payload - 1) / payload);
        Assert.InRange(taken, inflight + fits - 1, inflight + fits + 1);
    }

    private static MqttPublishPacket Publish(string id, ushort packetId) => new()
    {
        Topic = id + "/t", Payload = new byte[] { (byte)packetId }, QoS = BrokerQoS.ExactlyOnce, PacketId = packetId,
    };

    private static (ushort, MqttReasonCode) Answer(MqttPubRecPacket rec) => (rec.PacketId, rec.ReasonCode);
}
