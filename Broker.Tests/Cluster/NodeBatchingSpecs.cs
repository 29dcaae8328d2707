using Akka.Actor;
using Akka.Cluster.Sharding;
using Broker.Cluster;
using Broker.Routing;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// What crosses between nodes in bursts travels batched: a connection's consecutive publishes to one topic reach the
/// topic's node as one <see cref="RoutePublishes"/>, and the deliveries and confirmations one node sends another go as
/// <see cref="LinkBatch"/>es. Counted by every node's serializer; the messages still arrive complete and in order.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class NodeBatchingSpecs(ThreeNodeClusterFixture fixture)
{
    private const int Burst = 300;
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Theory]
    [InlineData(MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttQualityOfServiceLevel.AtLeastOnce)]
    public async Task A_burst_to_a_topic_on_another_node_crosses_in_batches_and_arrives_in_order(MqttQualityOfServiceLevel qos)
    {
        var id = E2E.Id($"batch-q{(int)qos}", MqttProtocolVersion.V500);
        var (subscriber, received) = await _cluster.ConnectCollectingAsync(2, id + "-sub");
        var topic = await TopicNotHostedByAsync(1, id, async candidate => await E2E.SubscribeAsync(subscriber, candidate, qos));
        var publisher = await _cluster.ConnectAsync(1, id + "-pub");

        var before = Snapshot();
        // Published without waiting for each acknowledgement, as a device catching up would: the connection reads
        // many PUBLISH packets at once.
        await Task.WhenAll(Enumerable.Range(0, Burst).Select(n => publisher.PublishAsync(topic, Text(n), qos)));
        var messages = await received.WaitForAsync(Burst, TimeSpan.FromSeconds(30));
        var after = Snapshot();

        Assert.Equal(Enumerable.Range(0, Burst).Select(Text), messages.Select(E2E.Text));
        int Crossed(Type type) => after.GetValueOrDefault(type) - before.GetValueOrDefault(type);
        var single = Crossed(typeof(RoutePublish));
        var batches = Crossed(typeof(RoutePublishes));
        Assert.True(batches >= 1, $"no batch of publishes crossed ({single} single ones)");
        Assert.True(single + batches < Burst, $"{single} single publishes and {batches} batches for {Burst} publishes");
        if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
        {
            // Confirmations for the publisher's node came back from the topic's and the subscriber's node batched too.
            Assert.True(Crossed(typeof(LinkBatch)) < Crossed(typeof(PublishRouted)) + Crossed(typeof(DeliveryStored)),
                $"{Crossed(typeof(LinkBatch))} link batches for {Crossed(typeof(PublishRouted))} routed and {Crossed(typeof(DeliveryStored))} stored confirmations");
        }
    }

    /// <summary>Subscribes to candidate topics until one's entity runs on a node other than <paramref name="node"/>.</summary>
    private async Task<string> TopicNotHostedByAsync(int node, string prefix, Func<string, Task> subscribe)
    {
        var context = _cluster.Node(node).Context;
        for (var i = 0; i < 40; i++)
        {
            var candidate = $"{prefix}/t{i}";
            await subscribe(candidate); // the topic entity starts (and its shard is placed) on the subscribe
            var state = await context.TopicRegion.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(10));
            if (state.Shards.All(s => s.ShardId != context.TopicShardOf(candidate)))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"every candidate topic's shard was placed on node {node}");
    }

    private Dictionary<Type, int> Snapshot() => new(fixture.Serialization.ByBroker);

    private static string Text(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
