using Broker.Protocol.Packets;
using MqttQoS = Broker.Protocol.MqttQoS;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK: filter syntax, matching, subscription options, shared subscriptions.</summary>
public sealed class SubscribeSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Invalid_filters_get_a_SUBACK_failure_and_the_connection_stays_open_MQTT_3_9_3_2(MqttProtocolVersion version)
    {
        var id = E2E.Id("badfilter", version);
        // MQTTnet refuses to send invalid filters, so a raw client does.
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id);
        await using var __ = raw;
        await raw.SendAsync(new MqttSubscribePacket
        {
            PacketId = 5,
            Subscriptions =
            [
                new MqttTopicSubscription { TopicFilter = id + "/#/x", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = id + "/ab+/x", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = id + "/ok", QoS = MqttQoS.AtLeastOnce },
            ],
        });
        var subAck = await raw.ExpectAsync<MqttSubAckPacket>();
        Assert.Equal(5, subAck.PacketId);
        var failure = version == MqttProtocolVersion.V500 ? (byte)0x8F : (byte)0x80;
        Assert.Equal([failure, failure, (byte)0x01], subAck.ReasonCodes.Select(c => (byte)c).ToArray());

        // The connection stays open and the valid filter works.
        await raw.SendAsync(new MqttPublishPacket { Topic = id + "/ok", QoS = MqttQoS.AtLeastOnce, PacketId = 6, Payload = "still here"u8.ToArray() });
        var packets = new[] { await raw.ReceiveAsync(), await raw.ReceiveAsync() };
        Assert.Equal(6, packets.OfType<MqttPubAckPacket>().Single().PacketId);
        Assert.Equal("still here", System.Text.Encoding.UTF8.GetString(packets.OfType<MqttPublishPacket>().Single().Payload.Span));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_publish_sent_right_behind_its_SUBSCRIBE_in_the_same_write_reaches_the_new_subscription(MqttProtocolVersion version)
    {
        // A device that connects, subscribes to its own topic and publishes to it in one write (no wait for SUBACK)
        // gets its own message back: the broker handles a client's packets in the order they came.
        var id = E2E.Id("oneshot", version);
        var raw = await RawMqttClient.OpenAsync(_broker.Port, version);
        await using var _ = raw;
        var v = raw.Version;
        byte[][] frames =
        [
            Broker.Protocol.Codec.MqttPacketEncoder.Encode(new MqttConnectPacket { ProtocolVersion = v, ClientId = id, CleanStart = true }, v),
            Broker.Protocol.Codec.MqttPacketEncoder.Encode(new MqttSubscribePacket
            {
                PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = id + "/echo", QoS = MqttQoS.AtLeastOnce }],
            }, v),
            Broker.Protocol.Codec.MqttPacketEncoder.Encode(new MqttPublishPacket
            {
                Topic = id + "/echo", QoS = MqttQoS.AtLeastOnce, PacketId = 2, Payload = "echo"u8.ToArray(),
            }, v),
        ];
        await raw.SendRawAsync(frames.SelectMany(f => f).ToArray());

        var packets = new List<MqttPacket>();
        while (packets.OfType<MqttPublishPacket>().Count() < 1 || packets.OfType<MqttPubAckPacket>().Count() < 1)
        {
            packets.Add(await raw.ReceiveAsync(TimeSpan.FromSeconds(10)) ?? throw new InvalidOperationException("closed"));
        }

        Assert.IsType<MqttConnAckPacket>(packets[0]);
        Assert.IsType<MqttSubAckPacket>(packets[1]);
        Assert.Equal("echo", System.Text.Encoding.UTF8.GetString(packets.OfType<MqttPublishPacket>().Single().Payload.Span));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Single_and_multi_level_wildcards_match_as_specified_MQTT_4_7_1_2_and_3(MqttProtocolVersion version)
    {
        var id = E2E.Id("wild", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id + "/s/+/t");
        await subscriber.SubscribeAsync(id + "/h/#");

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        string[] topics = [id + "/s/1/t", id + "/s/1/2/t", id + "/s//t", id + "/s/1/t/x", id + "/h", id + "/h/a", id + "/h/a/b", id + "/hx"];
        foreach (var topic in topics)
        {
            await publisher.PublishAsync(topic, topic);
        }

        string[] expected = [id + "/s/1/t", id + "/s//t", id + "/h", id + "/h/a", id + "/h/a/b"];
        await received.WaitForAsync(expected.Length);
        await received.AssertNoMoreAsync(expected.Length, E2E.Quiet);
        Assert.Equal(expected.Order(), E2E.Texts(received.Messages).Order());
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Topics_starting_with_dollar_are_not_matched_by_leading_wildcards_MQTT_4_7_2_1(MqttProtocolVersion version)
    {
        var id = E2E.Id("dollar", version);
        var wildcard = await _broker.ConnectAsync(version, id + "-wild");
        var wild = new MessageCollector(wildcard);
        await wildcard.SubscribeAsync("#");
        await wildcard.SubscribeAsync("+/" + id);
        var explicitClient = await _broker.ConnectAsync(version, id + "-explicit");
        var explicitReceived = new MessageCollector(explicitClient);
        // Any topic starting with $ (clients may not publish to the broker's own $SYS/, so another $ prefix here).
        await explicitClient.SubscribeAsync("$app/" + id);

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync("$app/" + id, "system");
        await publisher.PublishAsync("x/" + id, "normal");

        Assert.Equal("system", E2E.Text((await explicitReceived.WaitForAsync(1))[0]));
        var messages = await wild.WaitForAsync(1);
        await wild.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal("x/" + id, Assert.Single(messages).Topic);
        await wildcard.DisconnectAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Overlapping_subscriptions_deliver_one_message_at_the_highest_QoS_with_every_subscription_id_MQTT_3_3_4_2(
        MqttProtocolVersion version)
    {
        var id = E2E.Id("overlap", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        var v5 = version == MqttProtocolVersion.V500;
        var first = new MqttClientSubscribeOptionsBuilder().WithTopicFilter(id + "/+", MqttQualityOfServiceLevel.AtLeastOnce);
        var second = new MqttClientSubscribeOptionsBuilder().WithTopicFilter(id + "/#", MqttQualityOfServiceLevel.ExactlyOnce);
        if (v5)
        {
            first.WithSubscriptionIdentifier(1);
            second.WithSubscriptionIdentifier(2);
        }

        await subscriber.SubscribeAsync(first.Build());
        await subscriber.SubscribeAsync(second.Build());
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/x", "both", MqttQualityOfServiceLevel.ExactlyOnce);

        var message = (await received.WaitForAsync(1))[0];
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, message.QualityOfServiceLevel);
        if (v5)
        {
            Assert.Equal([1u, 2u], message.SubscriptionIdentifiers.Order().ToArray());
        }
    }

    [Fact]
    public async Task V5_no_local_subscription_does_not_receive_the_clients_own_messages_MQTT_3_8_3_3()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("nolocal", version);
        var client = await _broker.ConnectAsync(version, id);
        var received = new MessageCollector(client);
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(new MqttTopicFilterBuilder()
            .WithTopic(id).WithAtLeastOnceQoS().WithNoLocal(true).Build()).Build());
        var other = await _broker.ConnectAsync(version, id + "-other");

        await client.PublishAsync(id, "own");
        await other.PublishAsync(id, "other");

        var messages = await received.WaitForAsync(1);
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(["other"], E2E.Texts(messages));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Without_no_local_a_client_receives_its_own_messages(MqttProtocolVersion version)
    {
        var id = E2E.Id("local", version);
        var client = await _broker.ConnectAsync(version, id);
        var received = new MessageCollector(client);
        await client.SubscribeAsync(id);
        await client.PublishAsync(id, "own");
        Assert.Equal("own", E2E.Text((await received.WaitForAsync(1))[0]));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Live_messages_carry_retain_0_unless_the_subscription_asks_for_retain_as_published_MQTT_3_3_1_9_and_3_3_1_12(
        MqttProtocolVersion version)
    {
        var id = E2E.Id("rap", version);
        var plain = await _broker.ConnectAsync(version, id + "-plain");
        var plainReceived = new MessageCollector(plain);
        await plain.SubscribeAsync(id);
        MessageCollector? rapReceived = null;
        if (version == MqttProtocolVersion.V500)
        {
            var rap = await _broker.ConnectAsync(version, id + "-rap");
            rapReceived = new MessageCollector(rap);
            await rap.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(new MqttTopicFilterBuilder()
                .WithTopic(id).WithAtLeastOnceQoS().WithRetainAsPublished(true).Build()).Build());
        }

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id, "retained", retain: true);
        await publisher.PublishAsync(id, "live");

        var plainMessages = await plainReceived.WaitForAsync(2);
        Assert.Equal([("retained", false), ("live", false)], plainMessages.Select(m => (E2E.Text(m), m.Retain)).ToArray());
        if (rapReceived is not null)
        {
            var rapMessages = await rapReceived.WaitForAsync(2);
            Assert.Equal([("retained", true), ("live", false)], rapMessages.Select(m => (E2E.Text(m), m.Retain)).ToArray());
        }

        await publisher.PublishAsync(id, "", retain: true); // leave no retained message behind
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Unsubscribe_stops_delivery_MQTT_3_10_4_1(MqttProtocolVersion version)
    {
        var id = E2E.Id("unsub", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id + "/gone");
        await subscriber.SubscribeAsync(id + "/+/kept");
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/gone", "before");
        await received.WaitForAsync(1);

        var result = await subscriber.UnsubscribeAsync(new MqttClientUnsubscribeOptionsBuilder().WithTopicFilter(id + "/gone").Build());
        Assert.Equal(MqttClientUnsubscribeResultCode.Success, Assert.Single(result.Items).ResultCode);
        await publisher.PublishAsync(id + "/gone", "after");
        await publisher.PublishAsync(id + "/x/kept", "marker");

        await received.WaitForAsync(2);
        await received.AssertNoMoreAsync(2, E2E.Quiet);
        Assert.Equal(["before", "marker"], E2E.Texts(received.Messages));
    }

    [Fact]
    public async Task V5_UNSUBACK_answers_0x11_for_a_filter_that_did_not_exist()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("unsuback", version);
        var client = await _broker.ConnectAsync(version, id);
        await client.SubscribeAsync(id + "/a");
        var result = await client.UnsubscribeAsync(new MqttClientUnsubscribeOptionsBuilder()
            .WithTopicFilter(id + "/a").WithTopicFilter(id + "/never").Build());
        Assert.Equal(
            [MqttClientUnsubscribeResultCode.Success, MqttClientUnsubscribeResultCode.NoSubscriptionExisted],
            result.Items.Select(i => i.ResultCode).ToArray());
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, "")]
    [InlineData(MqttProtocolVersion.V311, "/wild/#")]
    [InlineData(MqttProtocolVersion.V500, "")]
    [InlineData(MqttProtocolVersion.V500, "/wild/#")]
    public async Task Shared_subscription_splits_messages_among_its_members_without_duplicates_MQTT_4_8_2(
        MqttProtocolVersion version, string filterSuffix)
    {
        var id = E2E.Id("shared", version);
        var topicBase = id + (filterSuffix.Length == 0 ? "" : "/wild");
        var filter = "$share/g/" + id + filterSuffix;
        var collectors = new List<MessageCollector>();
        for (var i = 0; i < 3; i++)
        {
            var member = await _broker.ConnectAsync(version, $"{id}-m{i}");
            collectors.Add(new MessageCollector(member));
            await member.SubscribeAsync(filter);
        }

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        for (var i = 0; i < 30; i++)
        {
            var topic = filterSuffix.Length == 0 ? topicBase : $"{topicBase}/{i % 4}";
            await publisher.PublishAsync(topic, i.ToString());
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (collectors.Sum(c => c.Messages.Count) < 30 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await Task.Delay(E2E.Quiet);
        var all = collectors.SelectMany(c => E2E.Texts(c.Messages)).ToArray();
        Assert.Equal(30, all.Length);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => i.ToString()).Order(), all.Order());
        Assert.All(collectors, c => Assert.NotEmpty(c.Messages));
    }
}
