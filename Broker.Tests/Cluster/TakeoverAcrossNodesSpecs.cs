using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;

namespace Broker.Tests.Cluster;

/// <summary>
/// A client id that connects to another node takes its session over from wherever the session lives [MQTT-3.1.4-3]:
/// the old connection (node 1) is closed with v5 reason 0x8E, the new one (node 2) finds the session present with its
/// subscriptions, and the messages it had not acknowledged or not yet received arrive on node 2.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class TakeoverAcrossNodesSpecs(ThreeNodeClusterFixture fixture)
{
    private const int Messages = 50; // more than Sessions:MaxInflight (32): some stay in flight, the rest queued
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task Connecting_to_node_2_takes_over_the_session_from_node_1_with_subscriptions_and_pending_messages()
    {
        var id = E2E.Id("takeover-x", MqttProtocolVersion.V500);
        var topic = id + "/t";

        // Node 1: a persistent session that receives but never acknowledges, so everything stays pending.
        var first = _cluster.NewClient();
        var firstSeen = 0;
        first.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            Interlocked.Increment(ref firstSeen);
            return Task.CompletedTask;
        };
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        var firstResult = await first.ConnectAsync(_cluster.Options(1, MqttProtocolVersion.V500, id)
            .WithCleanStart(true).WithSessionExpiryInterval(300).Build());
        Assert.False(firstResult.IsSessionPresent);
        await E2E.SubscribeAsync(first, topic);

        var publisher = await _cluster.ConnectAsync(3, id + "-pub");
        for (var n = 0; n < Messages; n++)
        {
            await publisher.PublishAsync(topic, Text(n));
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Volatile.Read(ref firstSeen) < 32 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(Volatile.Read(ref firstSeen) >= 32, $"node 1 client saw {firstSeen} messages before the takeover");

        // Node 2: same client id, clean start 0.
        var second = _cluster.NewClient();
        var received = new MessageCollector(second);
        var result = await second.ConnectAsync(_cluster.Options(2, MqttProtocolVersion.V500, id)
            .WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        Assert.True(result.IsSessionPresent);

        var closed = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, closed.Reason);
        Assert.False(first.IsConnected);

        // Every pending message arrives on node 2 in order (the unacknowledged ones again, with DUP).
        var messages = await received.WaitForAsync(Messages, TimeSpan.FromSeconds(15));
        Assert.Equal(Enumerable.Range(0, Messages).Select(Text), E2E.Texts(messages.Take(Messages)));

        // The subscription made on node 1 keeps routing to node 2 without a new SUBSCRIBE.
        await publisher.PublishAsync(topic, "after takeover");
        var after = await received.WaitForAsync(Messages + 1, TimeSpan.FromSeconds(5));
        Assert.Equal("after takeover", E2E.Text(after[^1]));
        Assert.True(second.IsConnected);
    }

    private static string Text(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
