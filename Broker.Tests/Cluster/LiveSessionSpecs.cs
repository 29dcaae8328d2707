using Akka.Actor;
using Broker.Operations;
using Broker.Routing;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// Clean sessions run on the node of their connection, and publishes reach them there in one message per node:
/// where the management API says a session lives, which messages cross nodes for a publish (counted by the
/// serializer of every node), and that order holds through the per-node batches at QoS 0, 1 and 2.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class LiveSessionSpecs(ThreeNodeClusterFixture fixture)
{
    private const int SubscribersPerNode = 6;
    private const int MessagesPerQoS = 20;
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task A_clean_session_lives_on_the_node_of_its_connection_and_moves_with_a_takeover()
    {
        var id = E2E.Id("live-where", MqttProtocolVersion.V500);
        var topic = id + "/t";
        var (first, _) = await _cluster.ConnectCollectingAsync(2, id);
        await E2E.SubscribeAsync(first, topic);
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };

        var info = await SessionInfoAsync(id);
        Assert.True(info.Connected);
        Assert.StartsWith(AddressOf(2) + "#", info.Node);
        Assert.Equal([topic], info.Subscriptions.Select(s => s.Filter));

        // The same client id on node 3 takes the session over: the first connection hears 0x8E, and the new
        // session lives on node 3 (clean start: it starts empty).
        var (second, received) = await _cluster.ConnectCollectingAsync(3, id);
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, (await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
        await E2E.SubscribeAsync(second, topic);
        info = await SessionInfoAsync(id);
        Assert.StartsWith(AddressOf(3) + "#", info.Node);

        var publisher = await _cluster.ConnectAsync(1, id + "-pub");
        await publisher.PublishAsync(topic, "after takeover", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("after takeover", E2E.Text((await received.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
        await received.AssertNoMoreAsync(1, E2E.Quiet);
    }

    [Fact]
    public async Task A_publish_to_clean_subscribers_on_two_other_nodes_crosses_once_per_node_in_order_at_every_QoS()
    {
        var id = E2E.Id("live-batch", MqttProtocolVersion.V500);
        var topics = new[] { $"{id}/q0", $"{id}/q1", $"{id}/q2" };
        var subscribers = new List<(MessageCollector Received, string Who)>();
        foreach (var node in new[] { 2, 3 })
        {
            for (var i = 0; i < SubscribersPerNode; i++)
            {
                var (client, received) = await _cluster.ConnectCollectingAsync(node, $"{id}-n{node}-{i}");
                // Half subscribe to each exact topic, half with one wildcard: both kinds of route name the node.
                if (i % 2 == 0)
                {
                    foreach (var topic in topics)
                    {
                        await E2E.SubscribeAsync(client, topic, MqttQualityOfServiceLevel.ExactlyOnce);
                    }
                }
                else
                {
                    await E2E.SubscribeAsync(client, id + "/+", MqttQualityOfServiceLevel.ExactlyOnce);
                }

                subscribers.Add((received, $"node {node} subscriber {i}"));
            }
        }

        var publisher = await _cluster.ConnectAsync(1, id + "-pub");
        var before = Snapshot();
        for (var q = 0; q < topics.Length; q++)
        {
            for (var n = 0; n < MessagesPerQoS; n++)
            {
                await publisher.PublishAsync(topics[q], Text(n), (MqttQualityOfServiceLevel)q);
            }
        }

        const int total = MessagesPerQoS * 3;
        foreach (var (received, who) in subscribers)
        {
            var messages = await received.WaitForAsync(total, TimeSpan.FromSeconds(20));
            Assert.True(messages.Count == total, $"{who}: {messages.Count} messages");
            foreach (var topic in topics)
            {
                Assert.Equal(Enumerable.Range(0, MessagesPerQoS).Select(Text), messages.Where(m => m.Topic == topic).Select(E2E.Text));
            }
        }

        var after = Snapshot();
        int Crossed(Type type) => after.GetValueOrDefault(type) - before.GetValueOrDefault(type);

        // No subscriber got a delivery of its own across the network; every publish went to each node with
        // subscribers (other than its topic entity's own) in one NodeDeliver, and came back confirmed in one
        // DeliveryStored per node (QoS 1 and 2) instead of one per subscriber.
        Assert.Equal(0, Crossed(typeof(Deliver)));
        Assert.InRange(Crossed(typeof(NodeDeliver)), total, 2 * total);
        Assert.InRange(Crossed(typeof(DeliveryStored)), 0, 2 * 2 * MessagesPerQoS);
    }

    [Fact]
    public async Task A_clean_session_with_an_exact_and_a_wildcard_filter_gets_a_message_once_and_a_shared_one_again()
    {
        // The exact filter reaches it through its node's route (expanded by the node's session host), the wildcard
        // through its own entry: the host hands it the message once [MQTT-3.3.4-2 allows one copy per matching
        // subscription; this broker sends one]. A shared subscription is a subscription of its own: a second copy.
        var id = E2E.Id("live-overlap", MqttProtocolVersion.V500);
        var topic = id + "/cmd";
        var (both, bothReceived) = await _cluster.ConnectCollectingAsync(2, id + "-both");
        await E2E.SubscribeAsync(both, topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await E2E.SubscribeAsync(both, id + "/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var (shared, sharedReceived) = await _cluster.ConnectCollectingAsync(2, id + "-shared");
        await E2E.SubscribeAsync(shared, topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await E2E.SubscribeAsync(shared, $"$share/g/{topic}", MqttQualityOfServiceLevel.AtLeastOnce);

        var publisher = await _cluster.ConnectAsync(1, id + "-pub");
        await publisher.PublishAsync(topic, "one", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.Equal(["one"], (await bothReceived.WaitForAsync(1, TimeSpan.FromSeconds(10))).Select(E2E.Text));
        Assert.Equal(["one", "one"], (await sharedReceived.WaitForAsync(2, TimeSpan.FromSeconds(10))).Select(E2E.Text));
        await bothReceived.AssertNoMoreAsync(1, E2E.Quiet);
        await sharedReceived.AssertNoMoreAsync(2, E2E.Quiet);
    }

    private Dictionary<Type, int> Snapshot() => new(fixture.Serialization.ByBroker);

    private string AddressOf(int node) => Akka.Cluster.Cluster.Get(_cluster.Node(node).System).SelfAddress.ToString();

    private Task<SessionInfo> SessionInfoAsync(string clientId) =>
        _cluster.Node(1).Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo(clientId), TimeSpan.FromSeconds(10));

    private static string Text(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
