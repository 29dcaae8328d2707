using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>
/// A SUBSCRIBE whose route requests go to a node that has just died is still answered, on three Broker.Node processes.
/// A persistent session's SUBACK waits until every exact topic's entity has stored the subscriber; the request travels
/// through the topic region to the node holding the topic's shard. Killed with SIGKILL and downed by the failure
/// detector and the split-brain resolver, the node stays a member for some seconds, and requests sent to it in that
/// time are lost with it. The session asks again while its SUBACK is pending, so the SUBACK comes once the dead node's
/// shards have moved, and the subscriptions work: a message on each topic reaches the subscriber. Likewise the retained
/// messages a wildcard SUBSCRIBE asks each topic's entity for (its SUBACK does not wait for them): the requests lost
/// with the node are asked again once its shards can be reached.
/// </summary>
public sealed class SubscribeAcrossLostNodeSpecs
{
    private const int Topics = 24;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly ITestOutputHelper _output;

    public SubscribeAcrossLostNodeSpecs(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task A_SUBSCRIBE_and_the_retained_messages_asked_for_while_a_node_holding_their_topics_dies_are_answered()
    {
        // Downing by the resolver only: the node stays a member (and keeps its shards) for some seconds after the kill.
        await using var cluster = await ProcessCluster.StartWithOperationsAsync("--Cluster:DownEndedNodes=false");
        using var http = ProcessCluster.ManagementClient();
        var run = Guid.NewGuid().ToString("N")[..6];
        const int via = 1;
        const int victim = 3;
        var exact = Enumerable.Range(0, Topics).Select(i => $"lostsub/{run}/t{i}").ToList();
        var retained = Enumerable.Range(0, Topics).Select(i => $"lostret/{run}/t{i}").ToList();
        var retainedFilter = $"lostret/{run}/#";

        // Every topic's entity exists before the kill, spread over the three nodes (so some live on the victim): the
        // exact ones subscribed to, the others holding a retained message.
        var (warm, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostsub-warm-{run}");
        await using (warm)
        {
            await warm.SendAsync(Subscribe(1, exact));
            Assert.Equal(Topics, (await warm.ExpectAsync<MqttSubAckPacket>(Bound)).ReasonCodes.Length);
        }

        var (publisher, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostsub-pub-{run}");
        await using var _publisher = publisher;
        await PublishEachAsync(publisher, retained, retain: true);

        // Before the kill a wildcard subscriber on the same node gets every retained message (the node's index has them).
        var (control, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostret-control-{run}");
        await using (control)
        {
            await control.SubscribeAsync(1, retainedFilter, MqttQoS.AtMostOnce);
            Assert.Equal(Topics, (await ReceiveEachAsync(control, expectRetained: true)).Count);
        }

        // Two persistent sessions that do not live on the victim, connected to a survivor.
        var (exactId, exactSubscriber) = await cluster.ConnectAwayFromAsync(http, via, victim, $"lostsub-{run}", ClientVersion.V500, c => c with { SessionExpiryInterval = 600 });
        await using var _exact = exactSubscriber;
        var (retainedId, retainedSubscriber) = await cluster.ConnectAwayFromAsync(http, via, victim, $"lostret-{run}", ClientVersion.V500, c => c with { SessionExpiryInterval = 600 });
        await using var _retained = retainedSubscriber;

        await cluster.KillAsync(victim);
        var killedAt = DateTime.UtcNow;
        await exactSubscriber.SendAsync(Subscribe(2, exact));
        await retainedSubscriber.SubscribeAsync(1, retainedFilter, MqttQoS.AtLeastOnce); // a wildcard: answered at once

        var subAck = await exactSubscriber.ExpectAsync<MqttSubAckPacket>(Bound);
        _output.WriteLine($"SUBACK {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");
        Assert.Equal(2, subAck.PacketId);
        Assert.All(subAck.ReasonCodes, c => Assert.Equal(MqttReasonCode.GrantedQoS1, c));

        var retainedReceived = await ReceiveEachAsync(retainedSubscriber, expectRetained: true);
        _output.WriteLine($"{retainedReceived.Count} retained messages, the last {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");
        Assert.True(retainedReceived.Count == Topics,
            $"{retainedId} received {retainedReceived.Count} of {Topics} retained messages; missing {string.Join(", ", retained.Except(retainedReceived))}");

        // Each exact route holds: one message on every topic reaches its subscriber.
        await PublishEachAsync(publisher, exact, retain: false);
        var received = await ReceiveEachAsync(exactSubscriber, expectRetained: false);
        Assert.True(received.Count == Topics,
            $"{exactId} received {received.Count} of {Topics} topics; missing {string.Join(", ", exact.Except(received))}");
    }

    private static async Task PublishEachAsync(RawMqttClient publisher, List<string> topics, bool retain)
    {
        for (var i = 0; i < topics.Count; i++)
        {
            await publisher.SendAsync(new MqttPublishPacket
            {
                Topic = topics[i], Payload = Encoding.UTF8.GetBytes(topics[i]), QoS = MqttQoS.AtLeastOnce, Retain = retain, PacketId = (ushort)(i + 1),
            });
            Assert.Equal(MqttReasonCode.Success, (await publisher.ExpectAsync<MqttPubAckPacket>(Bound)).ReasonCode);
        }
    }

    /// <summary>Takes messages until one of every topic came (or the bound passed); answers QoS 1.</summary>
    private static async Task<HashSet<string>> ReceiveEachAsync(RawMqttClient client, bool expectRetained)
    {
        var received = new HashSet<string>();
        var deadline = DateTime.UtcNow + Bound;
        try
        {
            while (received.Count < Topics && DateTime.UtcNow < deadline)
            {
                if (await client.ReceiveAsync(deadline - DateTime.UtcNow) is MqttPublishPacket p)
                {
                    Assert.True(p.Retain == expectRetained, $"{p.Topic} came with retain {p.Retain}");
                    received.Add(p.Topic);
                    if (p.QoS == MqttQoS.AtLeastOnce)
                    {
                        await client.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
                    }
                }
            }
        }
        catch (TimeoutException)
        {
        }

        return received;
    }

    private static MqttSubscribePacket Subscribe(ushort packetId, IEnumerable<string> topics) => new()
    {
        PacketId = packetId,
        Subscriptions = [.. topics.Select(t => new MqttTopicSubscription { TopicFilter = t, QoS = MqttQoS.AtLeastOnce })],
    };
}
