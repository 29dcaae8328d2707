using System.Diagnostics;
using System.Text;
using Broker.Protocol.Packets;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>The will message: when it is published, when not, and the v5 will delay.</summary>
public sealed class WillSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    private async Task<MessageCollector> WatchAsync(MqttProtocolVersion version, string id)
    {
        var watcher = await _broker.ConnectAsync(version, id + "-watcher");
        var received = new MessageCollector(watcher);
        await watcher.SubscribeAsync(id + "/+");
        return received;
    }

    private static Func<MqttConnectPacket, MqttConnectPacket> WithWill(string id, uint delay = 0, uint sessionExpiry = 0) => c => c with
    {
        KeepAlive = 60,
        SessionExpiryInterval = sessionExpiry,
        CleanStart = sessionExpiry == 0,
        Will = new MqttWill
        {
            Topic = id + "/will",
            Payload = Encoding.UTF8.GetBytes("last words"),
            QoS = Broker.Protocol.MqttQoS.AtLeastOnce,
            DelayInterval = delay,
        },
    };

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_is_published_when_the_network_connection_closes_without_DISCONNECT_MQTT_3_1_2_8(MqttProtocolVersion version)
    {
        var id = E2E.Id("will-abort", version);
        var wills = await WatchAsync(version, id);
        var (raw, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, WithWill(id));
        Assert.Equal(0, connAck.ReasonCode);
        raw.Abort();

        var will = (await wills.WaitForAsync(1))[0];
        Assert.Equal(id + "/will", will.Topic);
        Assert.Equal("last words", E2E.Text(will));
        Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, will.QualityOfServiceLevel);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_is_not_published_after_a_normal_DISCONNECT_MQTT_3_1_2_10_and_3_14_4_3(MqttProtocolVersion version)
    {
        var id = E2E.Id("will-normal", version);
        var wills = await WatchAsync(version, id);
        var client = await _broker.ConnectAsync(version, id, b => b
            .WithWillTopic(id + "/will").WithWillPayload("last words").WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
        await client.DisconnectAsync();

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/marker", "marker");
        await wills.WaitForAsync(1);
        await wills.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Equal(["marker"], E2E.Texts(wills.Messages));
    }

    [Fact]
    public async Task V5_DISCONNECT_with_reason_0x04_publishes_the_will()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("will-0x04", version);
        var wills = await WatchAsync(version, id);
        var client = await _broker.ConnectAsync(version, id, b => b
            .WithWillTopic(id + "/will").WithWillPayload("last words").WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
        await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder()
            .WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());

        Assert.Equal("last words", E2E.Text((await wills.WaitForAsync(1))[0]));
    }

    [Fact]
    public async Task V5_will_delay_holds_the_will_back_until_the_delay_passed_MQTT_3_1_3_9()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("will-delay", version);
        var wills = await WatchAsync(version, id);
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, WithWill(id, delay: 2, sessionExpiry: 30));
        raw.Abort();
        var clock = Stopwatch.StartNew();

        await wills.AssertNoMoreAsync(0, TimeSpan.FromSeconds(1.2));
        await wills.WaitForAsync(1, TimeSpan.FromSeconds(4));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.8), TimeSpan.FromSeconds(4));
        Assert.Equal("last words", E2E.Text(wills.Messages[0]));
    }

    [Fact]
    public async Task V5_will_is_not_published_when_the_client_reconnects_within_the_will_delay_MQTT_3_1_2_8()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("will-cancel", version);
        var wills = await WatchAsync(version, id);
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, WithWill(id, delay: 2, sessionExpiry: 30));
        raw.Abort();

        var (again, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, c => c with { CleanStart = false, SessionExpiryInterval = 30 });
        await using var _ = again;
        Assert.True(connAck.SessionPresent);
        await wills.AssertNoMoreAsync(0, TimeSpan.FromSeconds(3));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_with_retain_becomes_the_retained_message_of_its_topic_MQTT_3_1_2_17(MqttProtocolVersion version)
    {
        var id = E2E.Id("will-retain", version);
        var watcher = await _broker.ConnectAsync(version, id + "-watch");
        var published = new MessageCollector(watcher);
        await watcher.SubscribeAsync(id + "/will");
        var (raw, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, c => WithWill(id)(c) with
        {
            Will = WithWill(id)(c).Will! with { Retain = true },
        });
        raw.Abort();

        // Once the will went out (live, so without the retain flag [MQTT-3.3.1-9]), a subscriber that arrives
        // afterwards finds it as the topic's retained message, with the retain flag [MQTT-3.3.1-8].
        var live = await published.WaitForAsync(1);
        Assert.False(live[0].Retain);
        var latecomer = await _broker.ConnectAsync(version, id + "-late");
        var received = new MessageCollector(latecomer);
        await latecomer.SubscribeAsync(id + "/will");
        await received.WaitForAsync(1);

        var will = received.Messages[0];
        Assert.Equal("last words", E2E.Text(will));
        Assert.True(will.Retain);
        var cleaner = await _broker.ConnectAsync(version, id + "-cleaner");
        await cleaner.PublishAsync(id + "/will", "", retain: true);
    }
}
