using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>Retained messages: stored, replaced, cleared, delivered on subscribe, found by wildcards, retain handling.</summary>
public sealed class RetainedSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Retained_message_is_stored_and_sent_to_a_new_subscriber_with_retain_set_MQTT_3_3_1_5_6_and_8(MqttProtocolVersion version)
    {
        var id = E2E.Id("retained", version);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id, "stored", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.DisconnectAsync();

        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id, MqttQualityOfServiceLevel.ExactlyOnce);
        var message = (await received.WaitForAsync(1))[0];
        Assert.Equal("stored", E2E.Text(message));
        Assert.True(message.Retain);
        Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, message.QualityOfServiceLevel);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_newer_retained_message_replaces_the_old_one_MQTT_3_3_1_5(MqttProtocolVersion version)
    {
        var id = E2E.Id("replace", version);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id, "old", retain: true);
        await publisher.PublishAsync(id, "new", retain: true);

        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id);
        await received.WaitForAsync(1);
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(["new"], E2E.Texts(received.Messages));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Empty_retained_payload_clears_the_retained_message_MQTT_3_3_1_10_and_11(MqttProtocolVersion version)
    {
        var id = E2E.Id("clear", version);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/cleared", "soon gone", retain: true);
        await publisher.PublishAsync(id + "/kept", "kept", retain: true);
        await publisher.PublishAsync(id + "/cleared", "", retain: true);

        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id + "/+");
        await received.WaitForAsync(1);
        await received.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(id + "/kept", Assert.Single(received.Messages).Topic);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Wildcard_subscription_receives_the_retained_message_of_every_matching_topic_MQTT_3_3_1_6(MqttProtocolVersion version)
    {
        var id = E2E.Id("retwild", version);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/a", "A", retain: true);
        await publisher.PublishAsync(id + "/b", "B", retain: true);
        await publisher.PublishAsync(id + "/c/d", "CD", retain: true);
        await publisher.PublishAsync(id + "x/a", "other", retain: true);

        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(id + "/#");
        await received.WaitForAsync(3);
        await received.AssertNoMoreAsync(3, E2E.Quiet);
        Assert.Equal(["A", "B", "CD"], E2E.Texts(received.Messages).Order());
        Assert.All(received.Messages, m => Assert.True(m.Retain));
    }

    [Theory]
    [InlineData(MqttRetainHandling.SendAtSubscribe, new[] { true, true })]
    [InlineData(MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly, new[] { true, false })]
    [InlineData(MqttRetainHandling.DoNotSendOnSubscribe, new[] { false, false })]
    public async Task V5_retain_handling_decides_whether_retained_messages_are_sent_on_subscribe_MQTT_3_3_1_9_to_11(
        MqttRetainHandling handling, bool[] sentOnFirstAndRepeatedSubscribe)
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("rh" + (int)handling, version);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/r", "retained", retain: true);

        var subscriber = await _broker.ConnectAsync(version, id + "-sub");
        var received = new MessageCollector(subscriber);
        var options = new MqttClientSubscribeOptionsBuilder().WithTopicFilter(new MqttTopicFilterBuilder()
            .WithTopic(id + "/+").WithAtLeastOnceQoS().WithRetainHandling(handling).Build()).Build();
        var expected = 0;
        foreach (var sent in sentOnFirstAndRepeatedSubscribe)
        {
            await subscriber.SubscribeAsync(options);
            // A live marker after the SUBACK: once it arrived, any retained message sent on subscribe would have too.
            await publisher.PublishAsync(id + "/marker", "marker");
            expected += sent ? 2 : 1;
            await received.WaitForAsync(expected);
            await received.AssertNoMoreAsync(expected, TimeSpan.FromMilliseconds(300));
        }

        var retainedCount = received.Messages.Count(m => E2E.Text(m) == "retained");
        Assert.Equal(sentOnFirstAndRepeatedSubscribe.Count(s => s), retainedCount);
        Assert.All(received.Messages.Where(m => E2E.Text(m) == "retained"), m => Assert.True(m.Retain));
    }
}
