using MQTTnet;
using MQTTnet.Formatter;

namespace Broker.Tests.EndToEnd;

/// <summary>A second CONNECT with the same client id takes the session over from the first connection.</summary>
public sealed class TakeoverSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Second_connect_with_the_same_client_id_closes_the_first_and_the_session_continues_MQTT_3_1_4_3(
        MqttProtocolVersion version)
    {
        var id = E2E.Id("takeover", version);
        var (first, _, _) = await _broker.ConnectPersistentAsync(version, id);
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        await first.SubscribeAsync(id + "/t");

        var (second, result, received) = await _broker.ConnectPersistentAsync(version, id);
        Assert.True(result.IsSessionPresent);

        var closed = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(first.IsConnected);
        if (version == MqttProtocolVersion.V500)
        {
            Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, closed.Reason);
        }

        // The subscription made on the first connection delivers to the second without a new SUBSCRIBE.
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "to the new connection");
        Assert.Equal("to the new connection", E2E.Text((await received.WaitForAsync(1))[0]));
        Assert.True(second.IsConnected);
    }
}
