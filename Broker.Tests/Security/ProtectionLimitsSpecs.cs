using System.Diagnostics;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using MQTTnet.Protocol;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// Limits that protect a node from one client: Mqtt:MaxPublishRate, Mqtt:MaxSubscriptionsPerClient and
/// Mqtt:MaxTopicLevels, including through topic aliases and shared subscriptions. (Mqtt:MaxConnections and
/// Mqtt:MaxPacketSize are covered by EndToEnd/LimitsSpecs and Protocol/MalformedFrameSpecs; the slow consumer's
/// bound by Robustness/SlowConsumerSpecs.)
/// </summary>
public sealed class ProtectionLimitsSpecs
{
    [Fact]
    public async Task A_client_over_MaxPublishRate_is_slowed_to_the_rate_without_losing_messages_or_its_connection()
    {
        const int rate = 20;
        const int count = 60;
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxPublishRate = rate } });
        var subscriber = await broker.ConnectAsync(ClientVersion.V500, "rate-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("rate/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await broker.ConnectAsync(ClientVersion.V500, "rate-pub");

        // One QoS 1 publish at a time: each is read only when the bucket has a token, so the whole run cannot be faster
        // than the rate allows after the first second's burst, however fast the machine.
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var result = await publisher.PublishAsync(E2E.Message("rate/t", $"m{i}", MqttQualityOfServiceLevel.AtLeastOnce));
            Assert.Equal(MQTTnet.MqttClientPublishReasonCode.Success, result.ReasonCode);
        }

        var elapsed = watch.Elapsed;
        var messages = await received.WaitForAsync(count);
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"m{i}"), E2E.Texts(messages));
        var floor = TimeSpan.FromSeconds((count - rate - 1) / (double)rate * 0.9);
        Assert.True(elapsed >= floor, $"{count} publishes at {rate}/s took {elapsed.TotalMilliseconds:F0} ms, less than {floor.TotalMilliseconds:F0} ms");
        Assert.True(broker.Server.Context.Metrics.RateLimitPauses > 0);
        Assert.True(publisher.IsConnected);
    }

    [Theory]
    [InlineData(ClientVersion.V311, MqttReasonCode.UnspecifiedError)]
    [InlineData(ClientVersion.V500, MqttReasonCode.QuotaExceeded)]
    public async Task A_subscription_beyond_MaxSubscriptionsPerClient_is_refused(ClientVersion version, MqttReasonCode expected)
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxSubscriptionsPerClient = 2 } });
        var (client, _) = await RawMqttClient.ConnectAsync(broker.Port, version, "many-subs");
        Assert.Equal(MqttReasonCode.GrantedQoS0, (await client.SubscribeAsync(1, "a/#", MqttQoS.AtMostOnce)).ReasonCodes[0]);
        Assert.Equal(MqttReasonCode.GrantedQoS0, (await client.SubscribeAsync(2, "b/#", MqttQoS.AtMostOnce)).ReasonCodes[0]);
        Assert.Equal(expected, (await client.SubscribeAsync(3, "c/#", MqttQoS.AtMostOnce)).ReasonCodes[0]);

        // Replacing an existing subscription is not a new one.
        Assert.Equal(MqttReasonCode.GrantedQoS1, (await client.SubscribeAsync(4, "a/#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);
        await client.SendAsync(new MqttUnsubscribePacket { PacketId = 5, TopicFilters = ["b/#"] });
        await client.ExpectAsync<MqttUnsubAckPacket>();
        Assert.Equal(MqttReasonCode.GrantedQoS0, (await client.SubscribeAsync(6, "c/#", MqttQoS.AtMostOnce)).ReasonCodes[0]);
        Assert.Equal(1, broker.Server.Context.Metrics.LimitRejections);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Topics_deeper_than_MaxTopicLevels_are_refused_in_v5_also_through_an_alias_and_a_shared_subscription()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxTopicLevels = 4 } });
        var (client, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "deep-v5");
        var deep = "a/b/c/d/e";
        await client.SendAsync(new MqttPublishPacket { Topic = deep, TopicAlias = 1, QoS = MqttQoS.AtLeastOnce, PacketId = 1, Payload = Encoding.UTF8.GetBytes("x") });
        Assert.Equal(MqttReasonCode.TopicNameInvalid, (await client.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
        await client.SendAsync(new MqttPublishPacket { Topic = "", TopicAlias = 1, QoS = MqttQoS.AtLeastOnce, PacketId = 2, Payload = Encoding.UTF8.GetBytes("y") });
        Assert.Equal(MqttReasonCode.TopicNameInvalid, (await client.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
        await client.SendAsync(new MqttPublishPacket { Topic = "a/b/c/d", QoS = MqttQoS.AtLeastOnce, PacketId = 3, Payload = Encoding.UTF8.GetBytes("z") });
        Assert.Equal(MqttReasonCode.Success, (await client.ExpectAsync<MqttPubAckPacket>()).ReasonCode);

        Assert.Equal(MqttReasonCode.TopicFilterInvalid, (await client.SubscribeAsync(4, "a/b/c/d/#", MqttQoS.AtMostOnce)).ReasonCodes[0]);
        Assert.Equal(MqttReasonCode.TopicFilterInvalid, (await client.SubscribeAsync(5, "$share/g/a/b/c/d/e", MqttQoS.AtMostOnce)).ReasonCodes[0]);
        Assert.Equal(MqttReasonCode.GrantedQoS0, (await client.SubscribeAsync(6, "$share/g/a/b/c/#", MqttQoS.AtMostOnce)).ReasonCodes[0]);

        // QoS 0 has no acknowledgement to carry the refusal: DISCONNECT 0x90.
        await client.SendAsync(new MqttPublishPacket { Topic = deep, QoS = MqttQoS.AtMostOnce, Payload = Encoding.UTF8.GetBytes("q0") });
        var closing = await client.ExpectClosedAsync();
        Assert.Equal(MqttReasonCode.TopicNameInvalid, Assert.IsType<MqttDisconnectPacket>(closing[^1]).ReasonCode);
    }

    [Fact]
    public async Task Topics_deeper_than_MaxTopicLevels_close_a_311_publisher_and_get_0x80_on_subscribe()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxTopicLevels = 4 } });
        var (client, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V311, "deep-v311");
        Assert.Equal(MqttReasonCode.UnspecifiedError, (await client.SubscribeAsync(1, "a/b/c/d/e", MqttQoS.AtMostOnce)).ReasonCodes[0]);
        await client.SendAsync(new MqttPublishPacket { Topic = "a/b/c/d/e", QoS = MqttQoS.AtLeastOnce, PacketId = 2, Payload = Encoding.UTF8.GetBytes("x") });
        Assert.DoesNotContain(await client.ExpectClosedAsync(), p => p is MqttPubAckPacket);
        Assert.Equal(2, broker.Server.Context.Metrics.LimitRejections);
    }
}
