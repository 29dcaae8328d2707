using Broker.Configuration;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// What a full session queue does, per <c>Sessions:QueueFullPolicy</c>, shown on a persistent session whose client is
/// away (its queue fills and nothing drains it): "backpressure" holds the publisher for <c>Sessions:MaxPublisherHold</c>
/// and then refuses (v5 PUBACK 0x97; a 3.1.1 publisher is disconnected unacknowledged), "drop-oldest" and
/// "drop-newest" acknowledge and drop. Every refusal and drop is counted. Real broker, real TCP, MQTTnet clients.
/// </summary>
public sealed class QueueFullPolicySpecs
{
    private const int Queue = 10;
    private const int Published = 25;

    private static Task<BrokerHarness> StartAsync(string policy, long maxBytes = 16 * 1024 * 1024) =>
        BrokerHarness.StartAsync(o => o with
        {
            Sessions = o.Sessions with
            {
                MaxQueuedMessages = Queue, MaxQueuedBytes = maxBytes, QueueFullPolicy = policy, MaxPublisherHold = 1,
            },
        });

    private static async Task<string> OfflineSubscriberAsync(BrokerHarness broker, MqttProtocolVersion version, string prefix)
    {
        var id = E2E.Id(prefix, version);
        var (client, _, _) = await broker.ConnectPersistentAsync(version, id);
        await client.SubscribeAsync(id + "/t");
        await client.DisconnectAsync();
        return id;
    }

    private static async Task<string[]> ReconnectAndReceiveAsync(BrokerHarness broker, MqttProtocolVersion version, string id, int expected)
    {
        var (again, _, received) = await broker.ConnectPersistentAsync(version, id);
        await received.WaitForAsync(expected);
        await received.AssertNoMoreAsync(expected, E2E.Quiet);
        await again.DisconnectAsync();
        return E2E.Texts(received.Messages);
    }

    [Fact]
    public async Task Backpressure_holds_a_v5_publisher_then_refuses_with_0x97_and_drops_nothing_it_acknowledged()
    {
        await using var broker = await StartAsync("backpressure");
        var version = MqttProtocolVersion.V500;
        var id = await OfflineSubscriberAsync(broker, version, "bp");
        var publisher = await broker.ConnectAsync(version, id + "-pub");

        var codes = new List<MqttClientPublishReasonCode>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var heldFor = TimeSpan.Zero;
        for (var i = 1; i <= Published; i++)
        {
            var before = clock.Elapsed;
            codes.Add((await publisher.PublishAsync(E2E.Message(id + "/t", i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce))).ReasonCode);
            if (i == Queue + 1)
            {
                heldFor = clock.Elapsed - before;
            }
        }

        // The queue took ten; the eleventh was held for the hold (1 s) and refused, and so were the rest, at once.
        Assert.All(codes.Take(Queue), c => Assert.Equal(MqttClientPublishReasonCode.Success, c));
        Assert.All(codes.Skip(Queue), c => Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, c));
        Assert.InRange(heldFor, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(1, Queue).Select(i => i.ToString()), await ReconnectAndReceiveAsync(broker, version, id, Queue));
        var metrics = broker.Server.Context.Metrics;
        Assert.Equal(Published - Queue, metrics.RefusedQueueFull);
        Assert.Equal(0, metrics.DroppedQueueFull);

        // The queue drained (the client came back): it takes messages again.
        var (back, _, received) = await broker.ConnectPersistentAsync(version, id);
        await publisher.PublishAsync(id + "/t", "after the drain");
        Assert.Equal("after the drain", E2E.Text((await received.WaitForAsync(1))[0]));
        await back.DisconnectAsync();
    }

    [Fact]
    public async Task Backpressure_disconnects_a_3_1_1_publisher_unacknowledged_after_the_hold()
    {
        await using var broker = await StartAsync("backpressure");
        var id = await OfflineSubscriberAsync(broker, MqttProtocolVersion.V311, "bp311");
        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V311, id + "-pub");
        for (var i = 1; i <= Queue; i++)
        {
            await publisher.PublishAsync(id + "/t", i.ToString());
        }

        // 3.1.1 has no refusal code: no PUBACK, the connection closes (the client sends it again after reconnecting).
        await Assert.ThrowsAnyAsync<Exception>(() =>
            publisher.PublishAsync(E2E.Message(id + "/t", "refused", MqttQualityOfServiceLevel.AtLeastOnce)));
        Assert.False(publisher.IsConnected);
        Assert.Equal(1, broker.Server.Context.Metrics.RefusedQueueFull);
        Assert.Equal(Enumerable.Range(1, Queue).Select(i => i.ToString()),
            await ReconnectAndReceiveAsync(broker, MqttProtocolVersion.V311, id, Queue));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Drop_oldest_acknowledges_everything_keeps_the_newest_and_counts_the_drops(MqttProtocolVersion version)
    {
        await using var broker = await StartAsync("drop-oldest");
        var id = await OfflineSubscriberAsync(broker, version, "oldest");
        var publisher = await broker.ConnectAsync(version, id + "-pub");
        for (var i = 1; i <= Published; i++)
        {
            await publisher.PublishAsync(id + "/t", i.ToString());
        }

        Assert.Equal(Enumerable.Range(Published - Queue + 1, Queue).Select(i => i.ToString()),
            await ReconnectAndReceiveAsync(broker, version, id, Queue));
        Assert.Equal(Published - Queue, broker.Server.Context.Metrics.DroppedOldest);
        Assert.Equal(0, broker.Server.Context.Metrics.DroppedNewest);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Drop_newest_acknowledges_everything_keeps_the_first_and_counts_the_drops(MqttProtocolVersion version)
    {
        await using var broker = await StartAsync("drop-newest");
        var id = await OfflineSubscriberAsync(broker, version, "newest");
        var publisher = await broker.ConnectAsync(version, id + "-pub");
        for (var i = 1; i <= Published; i++)
        {
            await publisher.PublishAsync(id + "/t", i.ToString());
        }

        Assert.Equal(Enumerable.Range(1, Queue).Select(i => i.ToString()), await ReconnectAndReceiveAsync(broker, version, id, Queue));
        Assert.Equal(Published - Queue, broker.Server.Context.Metrics.DroppedNewest);
        Assert.Equal(0, broker.Server.Context.Metrics.DroppedOldest);
    }

    [Theory]
    [InlineData("backpressure")]
    [InlineData("drop-oldest")]
    public async Task Max_queued_bytes_bounds_a_queue_of_large_payloads(string policy)
    {
        // 1 MiB of queue, 256 KiB messages: four fit (the fourth fills it), whatever the count limit says.
        const int payload = 256 * 1024;
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Sessions = o.Sessions with { MaxQueuedMessages = 1000, MaxQueuedBytes = 1024 * 1024, QueueFullPolicy = policy, MaxPublisherHold = 1 },
        });
        var version = MqttProtocolVersion.V500;
        var id = await OfflineSubscriberAsync(broker, version, "bytes-" + policy);
        var publisher = await broker.ConnectAsync(version, id + "-pub");
        var codes = new List<MqttClientPublishReasonCode>();
        for (var i = 1; i <= 8; i++)
        {
            var body = new byte[payload];
            body[0] = (byte)i;
            codes.Add((await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(id + "/t").WithPayload(body)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build())).ReasonCode);
        }

        var (again, _, received) = await broker.ConnectPersistentAsync(version, id);
        await received.WaitForAsync(4, TimeSpan.FromSeconds(20));
        await received.AssertNoMoreAsync(4, E2E.Quiet);
        await again.DisconnectAsync();
        var firstBytes = received.Messages.Select(m => (int)m.Payload.FirstSpan[0]).ToArray();
        var metrics = broker.Server.Context.Metrics;
        if (policy == "backpressure")
        {
            Assert.Equal([1, 2, 3, 4], firstBytes);
            Assert.Equal(Enumerable.Repeat(MqttClientPublishReasonCode.QuotaExceeded, 4), codes.Skip(4));
            Assert.Equal(4, metrics.RefusedQueueFull);
        }
        else
        {
            Assert.Equal([5, 6, 7, 8], firstBytes);
            Assert.All(codes, c => Assert.Equal(MqttClientPublishReasonCode.Success, c));
            Assert.Equal(4, metrics.DroppedOldest);
        }
    }
}
