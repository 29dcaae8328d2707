using Broker.Configuration;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>A broker whose sessions queue at most 10 messages.</summary>
public sealed class SmallQueueBrokerFixture : BrokerFixture
{
    protected override BrokerOptions Configure(BrokerOptions options) =>
        options with { Sessions = options.Sessions with { MaxQueuedMessages = 10 } };
}

/// <summary>Persistent sessions (Clean Session 0 / Clean Start 0 with a session expiry) while the client is away.</summary>
public sealed class PersistentSessionSpecs(SmallQueueBrokerFixture fixture) : IClassFixture<SmallQueueBrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Subscriptions_survive_a_reconnect_MQTT_3_1_2_4(MqttProtocolVersion version)
    {
        var id = E2E.Id("keepsubs", version);
        var (client, _, _) = await _broker.ConnectPersistentAsync(version, id);
        await client.SubscribeAsync(id + "/t");
        await client.DisconnectAsync();

        var (again, result, received) = await _broker.ConnectPersistentAsync(version, id);
        Assert.True(result.IsSessionPresent);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "no resubscribe needed");
        Assert.Equal("no resubscribe needed", E2E.Text((await received.WaitForAsync(1))[0]));
        await again.DisconnectAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task QoS_1_and_2_messages_published_while_offline_are_delivered_on_reconnect_MQTT_3_1_2_5(MqttProtocolVersion version)
    {
        var id = E2E.Id("offline", version);
        var (client, _, _) = await _broker.ConnectPersistentAsync(version, id);
        await client.SubscribeAsync(id + "/t", MqttQualityOfServiceLevel.ExactlyOnce);
        await client.DisconnectAsync();

        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "q1", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync(id + "/t", "q2", MqttQualityOfServiceLevel.ExactlyOnce);

        var (again, result, received) = await _broker.ConnectPersistentAsync(version, id);
        Assert.True(result.IsSessionPresent);
        var messages = await received.WaitForAsync(2);
        await received.AssertNoMoreAsync(2, E2E.Quiet);
        Assert.Equal(
            [("q1", MqttQualityOfServiceLevel.AtLeastOnce), ("q2", MqttQualityOfServiceLevel.ExactlyOnce)],
            messages.Select(m => (E2E.Text(m), m.QualityOfServiceLevel)).ToArray());
        await again.DisconnectAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Clean_start_discards_the_session_and_its_queued_messages_MQTT_3_1_2_6(MqttProtocolVersion version)
    {
        var id = E2E.Id("discard", version);
        var (client, _, _) = await _broker.ConnectPersistentAsync(version, id);
        await client.SubscribeAsync(id + "/t");
        await client.DisconnectAsync();
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "queued");

        var clean = _broker.NewClient();
        var received = new MessageCollector(clean);
        var result = await clean.ConnectAsync(_broker.Options(version, id).WithCleanStart(true).Build());
        Assert.False(result.IsSessionPresent);
        await publisher.PublishAsync(id + "/t", "after clean start");
        await Task.Delay(E2E.Quiet);
        Assert.Empty(E2E.Texts(received.Messages));
    }

    [Fact]
    public async Task V5_session_ends_when_its_expiry_interval_passes_MQTT_3_1_2_23()
    {
        var version = MqttProtocolVersion.V500;
        var id = E2E.Id("expire", version);
        var (client, _, _) = await _broker.ConnectPersistentAsync(version, id, b => b.WithSessionExpiryInterval(1));
        await client.SubscribeAsync(id + "/t");
        await client.DisconnectAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));

        var (again, result, received) = await _broker.ConnectPersistentAsync(version, id, b => b.WithSessionExpiryInterval(1));
        Assert.False(result.IsSessionPresent);
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "no subscription left");
        await received.AssertNoMoreAsync(0, E2E.Quiet);
        await again.DisconnectAsync();
    }
}
