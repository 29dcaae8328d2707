using Akka.Actor;
using System.Text;
using Broker.Protocol.Packets;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using BrokerQoS = Broker.Protocol.MqttQoS;

namespace Broker.Tests.EndToEnd;

/// <summary>PUBLISH at every QoS, QoS downgrade, ordering, redelivery, flow control and the v5 message properties.</summary>
public sealed class PublishSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Messages_flow_at_QoS_0_1_and_2_in_both_directions(MqttProtocolVersion version)
    {
        var id = E2E.Id("qos", version);
        var a = await _broker.ConnectAsync(version, id + "-a");
        var b = await _broker.ConnectAsync(version, id + "-b");
        var atA = new MessageCollector(a);
        var atB = new MessageCollector(b);
        await a.SubscribeAsync(id + "/to-a", MqttQualityOfServiceLevel.ExactlyOnce);
        await b.SubscribeAsync(id + "/to-b", MqttQualityOfServiceLevel.ExactlyOnce);

        MqttQualityOfServiceLevel[] levels = [MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce];
        foreach (var qos in levels)
        {
            await a.PublishAsync(id + "/to-b", $"a{(int)qos}", qos);
            await b.PublishAsync(id + "/to-a", $"b{(int)qos}", qos);
        }

        var fromA = await atB.WaitForAsync(3);
        var fromB = await atA.WaitForAsync(3);
        Assert.Equal(["a0", "a1", "a2"], E2E.Texts(fromA));
        Assert.Equal(["b0", "b1", "b2"], E2E.Texts(fromB));
        Assert.Equal(levels, fromA.Select(m => m.QualityOfServiceLevel).ToArray());
        Assert.Equal(levels, fromB.Select(m => m.QualityOfServiceLevel).ToArray());
        Assert.All(fromA.Concat(fromB), m => Assert.Equal(id + (fromA.Contains(m) ? "/to-b" : "/to-a"), m.Topic));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    public async Task Delivered_QoS_is_the_minimum_of_published_and_granted_QoS(MqttProtocolVersion version, MqttQualityOfServiceLevel granted)
    {
        var id = E2E.Id("downgrade", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id, granted);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id, "q2", MqttQualityOfServiceLevel.ExactlyOnce);
        await publisher.PublishAsync(id, "q1", MqttQualityOfServiceLevel.AtLeastOnce);

        var messages = await received.WaitForAsync(2);
        Assert.Equal(["q2", "q1"], E2E.Texts(messages));
        Assert.Equal(granted, messages[0].QualityOfServiceLevel);
        Assert.Equal(granted, messages[1].QualityOfServiceLevel);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.ExactlyOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task Two_hundred_messages_of_one_publisher_on_one_topic_arrive_in_order_MQTT_4_6_0_6(
        MqttProtocolVersion version, MqttQualityOfServiceLevel qos)
    {
        var id = E2E.Id("order", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id, MqttQualityOfServiceLevel.ExactlyOnce);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        for (var i = 0; i < 200; i++)
        {
            await publisher.PublishAsync(id, i.ToString(), qos);
        }

        var messages = await received.WaitForAsync(200, TimeSpan.FromSeconds(20));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => i.ToString()).ToArray(), E2E.Texts(messages));
        await received.AssertNoMoreAsync(200, TimeSpan.FromMilliseconds(200));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Unacknowledged_QoS1_is_redelivered_with_DUP_when_a_persistent_session_reconnects_MQTT_4_4_0_1(
        MqttProtocolVersion version)
    {
        var id = E2E.Id("dup", version);
        Func<MqttConnectPacket, MqttConnectPacket> persistent = c => c with { CleanStart = false, SessionExpiryInterval = 300 };
        var (raw, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, persistent);
        Assert.False(connAck.SessionPresent);
        await raw.SubscribeAsync(1, id + "/t", BrokerQoS.AtLeastOnce);

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "once more", MqttQualityOfServiceLevel.AtLeastOnce);
        var first = await raw.ExpectAsync<MqttPublishPacket>();
        Assert.False(first.Dup);
        Assert.Equal(BrokerQoS.AtLeastOnce, first.QoS);
        raw.Abort(); // no PUBACK

        var (again, againAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, persistent);
        await using var _ = again;
        Assert.True(againAck.SessionPresent);
        var resent = await again.ExpectAsync<MqttPublishPacket>();
        Assert.True(resent.Dup);
        Assert.Equal(first.PacketId, resent.PacketId);
        Assert.Equal(id + "/t", resent.Topic);
        Assert.Equal("once more", Encoding.UTF8.GetString(resent.Payload.Span));
        await again.SendAsync(new MqttPubAckPacket { PacketId = resent.PacketId });
        await again.AssertSilentAsync(E2E.Quiet);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Unfinished_outbound_QoS2_resumes_with_PUBREL_after_PUBREC_was_received_MQTT_4_4_0_1(MqttProtocolVersion version)
    {
        var id = E2E.Id("pubrel", version);
        Func<MqttConnectPacket, MqttConnectPacket> persistent = c => c with { CleanStart = false, SessionExpiryInterval = 300 };
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, persistent);
        await raw.SubscribeAsync(1, id, BrokerQoS.ExactlyOnce);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id, "exactly once", MqttQualityOfServiceLevel.ExactlyOnce);

        var publish = await raw.ExpectAsync<MqttPublishPacket>();
        Assert.Equal(BrokerQoS.ExactlyOnce, publish.QoS);
        await raw.SendAsync(new MqttPubRecPacket { PacketId = publish.PacketId });
        Assert.Equal(publish.PacketId, (await raw.ExpectAsync<MqttPubRelPacket>()).PacketId);
        raw.Abort(); // no PUBCOMP

        var (again, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, persistent);
        await using var _ = again;
        Assert.True(connAck.SessionPresent);
        // The message is not sent again; only the release is.
        Assert.Equal(publish.PacketId, (await again.ExpectAsync<MqttPubRelPacket>()).PacketId);
        await again.SendAsync(new MqttPubCompPacket { PacketId = publish.PacketId });
        await again.AssertSilentAsync(E2E.Quiet);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Resent_inbound_QoS2_PUBLISH_is_delivered_only_once_MQTT_4_3_3_10(MqttProtocolVersion version)
    {
        var id = E2E.Id("qos2dup", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id, MqttQualityOfServiceLevel.ExactlyOnce);

        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id + "-pub");
        await using var __ = raw;
        var publish = new MqttPublishPacket { Topic = id, QoS = BrokerQoS.ExactlyOnce, PacketId = 9, Payload = "one"u8.ToArray() };
        await raw.SendAsync(publish);
        Assert.Equal(9, (await raw.ExpectAsync<MqttPubRecPacket>()).PacketId);
        await raw.SendAsync(publish with { Dup = true });
        Assert.Equal(9, (await raw.ExpectAsync<MqttPubRecPacket>()).PacketId);
        await raw.SendAsync(new MqttPubRelPacket { PacketId = 9 });
        Assert.Equal(9, (await raw.ExpectAsync<MqttPubCompPacket>()).PacketId);

        await received.WaitForAsync(1);
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(["one"], E2E.Texts(received.Messages));
    }

    [Fact]
    public async Task V5_in_flight_messages_to_a_client_are_bounded_by_its_receive_maximum_MQTT_3_3_4_9()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("recvmax", version);
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, c => c with { ReceiveMaximum = 2 });
        await using var __ = raw;
        await raw.SubscribeAsync(1, id, BrokerQoS.AtLeastOnce);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        for (var i = 1; i <= 5; i++)
        {
            await publisher.PublishAsync(id, "m" + i, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        var m1 = await raw.ExpectAsync<MqttPublishPacket>();
        var m2 = await raw.ExpectAsync<MqttPublishPacket>();
        Assert.Equal(["m1", "m2"], new[] { m1, m2 }.Select(p => Encoding.UTF8.GetString(p.Payload.Span)).ToArray());
        await raw.AssertSilentAsync(E2E.Quiet);

        await raw.SendAsync(new MqttPubAckPacket { PacketId = m1.PacketId });
        var m3 = await raw.ExpectAsync<MqttPublishPacket>();
        Assert.Equal("m3", Encoding.UTF8.GetString(m3.Payload.Span));
        await raw.AssertSilentAsync(E2E.Quiet);

        await raw.SendAsync(new MqttPubAckPacket { PacketId = m2.PacketId });
        await raw.SendAsync(new MqttPubAckPacket { PacketId = m3.PacketId });
        var m4 = await raw.ExpectAsync<MqttPublishPacket>();
        var m5 = await raw.ExpectAsync<MqttPublishPacket>();
        Assert.Equal(["m4", "m5"], new[] { m4, m5 }.Select(p => Encoding.UTF8.GetString(p.Payload.Span)).ToArray());
    }

    [Fact]
    public async Task V5_message_properties_are_passed_through_unchanged_MQTT_3_3_2_17_to_20()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("props", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(id).WithPayload("{\"x\":1}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData)
            .WithContentType("application/json")
            .WithResponseTopic(id + "/reply")
            .WithCorrelationData([1, 2, 3, 4])
            .WithUserProperty("b", "2"u8.ToArray().AsMemory())
            .WithUserProperty("a", "1"u8.ToArray().AsMemory())
            .WithUserProperty("b", "3"u8.ToArray().AsMemory())
            .Build());
        Assert.True(result.IsSuccess);

        var message = (await received.WaitForAsync(1))[0];
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, message.PayloadFormatIndicator);
        Assert.Equal("application/json", message.ContentType);
        Assert.Equal(id + "/reply", message.ResponseTopic);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, message.CorrelationData);
        Assert.Equal(
            [("b", "2"), ("a", "1"), ("b", "3")],
            message.UserProperties.Select(p => (p.Name, MQTTnet.Packets.MqttUserPropertyExtensions.ReadValueAsString(p))).ToArray());
    }

    [Fact]
    public async Task V5_subscription_identifiers_are_delivered_with_matching_messages_MQTT_3_3_4_3()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("subid", version);
        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(id + "/+", MqttQualityOfServiceLevel.AtLeastOnce).WithSubscriptionIdentifier(42).Build());
        await subscriber.SubscribeAsync(id + "/plain/x");

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/a", "with id");
        await publisher.PublishAsync(id + "/plain/x", "without id");

        var messages = await received.WaitForAsync(2);
        Assert.Equal([42u], messages.Single(m => E2E.Text(m) == "with id").SubscriptionIdentifiers);
        Assert.True(messages.Single(m => E2E.Text(m) == "without id").SubscriptionIdentifiers is null or { Count: 0 });
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Message_queued_for_an_offline_session_is_dropped_once_its_expiry_passed_MQTT_3_3_2_5(MqttProtocolVersion version)
    {
        var id = E2E.Id("expiry", version);
        var (subscriber, _, _) = await _broker.ConnectPersistentAsync(version, id + "-sub");
        await subscriber.SubscribeAsync(id);
        await subscriber.DisconnectAsync();

        // Offline as the session sees it: a message that reaches it while the old connection is still attached goes
        // out on it, and once sent it is sent again on reconnect, expired or not (MQTT-v5.0 3.3.2.3.3 deletes only
        // copies whose onward delivery has not started).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await _broker.Server.Context.SessionRegion.Ask<Broker.Operations.SessionInfo>(
                   new Broker.Operations.GetSessionInfo(id + "-sub"), TimeSpan.FromSeconds(5))).Connected)
        {
            Assert.True(DateTime.UtcNow < deadline, "the session still saw its client connected 10 s after DISCONNECT");
            await Task.Delay(20);
        }

        var publisher = await _broker.ConnectAsync(MqttProtocolVersion.V500, id + "-pub");
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(id).WithPayload("short-lived")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(1).Build());
        await Task.Delay(TimeSpan.FromSeconds(2));
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(id).WithPayload("long-lived")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(60).Build());

        var (again, result, received) = await _broker.ConnectPersistentAsync(version, id + "-sub");
        Assert.True(result.IsSessionPresent);
        var messages = await received.WaitForAsync(1);
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(["long-lived"], E2E.Texts(received.Messages));
        if (version == MqttProtocolVersion.V500)
        {
            // MQTT-3.3.2-6: the forwarded expiry is the remaining lifetime, never more than the original.
            Assert.InRange(messages[0].MessageExpiryInterval, 1u, 60u);
        }

        await again.DisconnectAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Inbound_topic_alias_is_resolved_for_subscribers_MQTT_3_3_2_12(MqttProtocolVersion subscriberVersion)
    {
        var id = E2E.Id("alias-in", subscriberVersion);
        var subscriber = await _broker.ConnectAsync(subscriberVersion, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id + "/long/topic/name");

        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, MqttProtocolVersion.V500, id + "-pub");
        await using var __ = raw;
        await raw.SendAsync(new MqttPublishPacket { Topic = id + "/long/topic/name", TopicAlias = 7, Payload = "first"u8.ToArray() });
        await raw.SendAsync(new MqttPublishPacket { Topic = "", TopicAlias = 7, Payload = "second"u8.ToArray() });
        await raw.SendAsync(new MqttPublishPacket { Topic = "", TopicAlias = 7, QoS = BrokerQoS.AtLeastOnce, PacketId = 1, Payload = "third"u8.ToArray() });
        Assert.Equal(1, (await raw.ExpectAsync<MqttPubAckPacket>()).PacketId);

        var messages = await received.WaitForAsync(3);
        Assert.Equal(["first", "second", "third"], E2E.Texts(messages));
        Assert.All(messages, m => Assert.Equal(id + "/long/topic/name", m.Topic));
    }

    [Fact]
    public async Task V5_outbound_topic_aliases_are_used_only_up_to_the_client_maximum_and_resolve_to_the_right_topics_MQTT_3_3_2_11()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("alias-out", version);
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id + "-raw", c => c with { TopicAliasMaximum = 1 });
        await using var __ = raw;
        await raw.SubscribeAsync(1, id + "/#", BrokerQoS.AtMostOnce);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");

        // MQTTnet 5.2 does not resolve aliases it receives (its messages arrive with an empty topic), so the raw
        // client plays the subscriber and resolves them itself, the way the spec tells a receiver to.
        string[] topics = [id + "/a", id + "/a", id + "/b", id + "/a", id + "/b"];
        var aliases = new Dictionary<ushort, string>();
        var packets = new List<MqttPublishPacket>();
        var resolved = new List<string>();
        foreach (var (topic, i) in topics.Select((t, i) => (t, i)))
        {
            // One at a time: messages on different topics are not ordered with each other.
            await publisher.PublishAsync(topic, i.ToString(), MqttQualityOfServiceLevel.AtMostOnce);
            var packet = await raw.ExpectAsync<MqttPublishPacket>();
            Assert.Equal(i.ToString(), Encoding.UTF8.GetString(packet.Payload.Span));
            if (packet.TopicAlias != 0 && packet.Topic.Length > 0)
            {
                aliases[packet.TopicAlias] = packet.Topic;
            }

            packets.Add(packet);
            resolved.Add(packet.Topic.Length > 0 ? packet.Topic : aliases[packet.TopicAlias]);
        }

        Assert.Equal(topics, resolved);
        // Alias 1 goes to the first topic; later messages on it carry the alias alone; "b" finds no alias left.
        Assert.Equal((id + "/a", (ushort)1), (packets[0].Topic, packets[0].TopicAlias));
        Assert.Equal(("", (ushort)1), (packets[1].Topic, packets[1].TopicAlias));
        Assert.Equal((id + "/b", (ushort)0), (packets[2].Topic, packets[2].TopicAlias));
        Assert.Equal(("", (ushort)1), (packets[3].Topic, packets[3].TopicAlias));
        Assert.Equal((id + "/b", (ushort)0), (packets[4].Topic, packets[4].TopicAlias));
    }

    [Fact]
    public async Task V5_client_without_topic_alias_maximum_never_receives_aliases_MQTT_3_3_2_11()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("alias-none", version);
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id + "-raw");
        await using var __ = raw;
        await raw.SubscribeAsync(1, id, BrokerQoS.AtMostOnce);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id, "1", MqttQualityOfServiceLevel.AtMostOnce);
        await publisher.PublishAsync(id, "2", MqttQualityOfServiceLevel.AtMostOnce);
        var first = await raw.ExpectAsync<MqttPublishPacket>();
        var second = await raw.ExpectAsync<MqttPublishPacket>();
        Assert.Equal([(id, (ushort)0), (id, (ushort)0)], new[] { (first.Topic, first.TopicAlias), (second.Topic, second.TopicAlias) });
    }
}
