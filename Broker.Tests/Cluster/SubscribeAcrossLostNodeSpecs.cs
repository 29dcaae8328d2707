using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
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
    public async Task A_SUBSCRIBE_sent_while_a_node_holding_its_topics_dies_is_answered_and_its_routes_work()
    {
        // Downing by the resolver only: the node stays a member (and keeps its shards) for some seconds after the kill.
        await using var cluster = await ProcessCluster.StartWithOperationsAsync("--Cluster:DownEndedNodes=false");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ProcessCluster.ManagementToken);
        var run = Guid.NewGuid().ToString("N")[..6];
        const int via = 1;
        const int victim = 3;
        var topics = Enumerable.Range(0, Topics).Select(i => $"lostsub/{run}/t{i}").ToList();

        // Every topic's entity exists before the kill, spread over the three nodes (so some live on the victim).
        var (warm, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostsub-warm-{run}");
        await using (warm)
        {
            await warm.SendAsync(Subscribe(1, topics));
            Assert.Equal(Topics, (await warm.ExpectAsync<MqttSubAckPacket>(Bound)).ReasonCodes.Length);
        }

        // The subscriber: a persistent session that does not live on the victim, connected to a survivor.
        var (subscriberId, subscriber) = await SubscriberAsync(http, cluster, via, victim, $"lostsub-{run}");
        await using var _subscriber = subscriber;

        await cluster.KillAsync(victim);
        var killedAt = DateTime.UtcNow;
        await subscriber.SendAsync(Subscribe(2, topics));
        var subAck = await subscriber.ExpectAsync<MqttSubAckPacket>(Bound);
        _output.WriteLine($"SUBACK {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");
        Assert.Equal(2, subAck.PacketId);
        Assert.All(subAck.ReasonCodes, c => Assert.Equal(MqttReasonCode.GrantedQoS1, c));

        // Each route holds: one message on every topic reaches the subscriber.
        var (publisher, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostsub-pub-{run}");
        await using var _publisher = publisher;
        for (var i = 0; i < Topics; i++)
        {
            await publisher.SendAsync(new MqttPublishPacket
            {
                Topic = topics[i], Payload = Encoding.UTF8.GetBytes(topics[i]), QoS = MqttQoS.AtLeastOnce, PacketId = (ushort)(i + 1),
            });
            Assert.Equal(MqttReasonCode.Success, (await publisher.ExpectAsync<MqttPubAckPacket>(Bound)).ReasonCode);
        }

        var received = new HashSet<string>();
        var deadline = DateTime.UtcNow + Bound;
        while (received.Count < Topics && DateTime.UtcNow < deadline)
        {
            if (await subscriber.ReceiveAsync(deadline - DateTime.UtcNow) is MqttPublishPacket p)
            {
                received.Add(p.Topic);
                await subscriber.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
            }
        }

        Assert.True(received.Count == Topics,
            $"{subscriberId} received {received.Count} of {Topics} topics; missing {string.Join(", ", topics.Except(received))}");
    }

    [Fact]
    public async Task Retained_messages_asked_for_while_a_node_holding_their_topics_dies_still_arrive()
    {
        await using var cluster = await ProcessCluster.StartWithOperationsAsync("--Cluster:DownEndedNodes=false");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ProcessCluster.ManagementToken);
        var run = Guid.NewGuid().ToString("N")[..6];
        const int via = 1;
        const int victim = 3;
        var topics = Enumerable.Range(0, Topics).Select(i => $"lostret/{run}/t{i}").ToList();
        var filter = $"lostret/{run}/#";

        // A retained message on every topic, their entities spread over the three nodes.
        var (publisher, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostret-pub-{run}");
        await using (publisher)
        {
            for (var i = 0; i < Topics; i++)
            {
                await publisher.SendAsync(new MqttPublishPacket
                {
                    Topic = topics[i], Payload = Encoding.UTF8.GetBytes(topics[i]), QoS = MqttQoS.AtLeastOnce, Retain = true, PacketId = (ushort)(i + 1),
                });
                Assert.Equal(MqttReasonCode.Success, (await publisher.ExpectAsync<MqttPubAckPacket>(Bound)).ReasonCode);
            }
        }

        // Before the kill a wildcard subscriber on the same node gets them all (the node's retained index has them).
        var (control, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"lostret-control-{run}");
        await using (control)
        {
            await control.SubscribeAsync(1, filter, MqttQoS.AtMostOnce);
            Assert.Equal(Topics, (await RetainedAsync(control)).Count);
        }

        var (subscriberId, subscriber) = await SubscriberAsync(http, cluster, via, victim, $"lostret-{run}");
        await using var _subscriber = subscriber;
        await cluster.KillAsync(victim);
        var killedAt = DateTime.UtcNow;
        await subscriber.SubscribeAsync(1, filter, MqttQoS.AtLeastOnce);
        var received = await RetainedAsync(subscriber);
        _output.WriteLine($"{received.Count} retained messages, the last {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill");
        Assert.True(received.Count == Topics,
            $"{subscriberId} received {received.Count} of {Topics} retained messages; missing {string.Join(", ", topics.Except(received))}");
    }

    /// <summary>Takes retained messages until one of every topic came (or the bound passed); answers QoS 1.</summary>
    private static async Task<HashSet<string>> RetainedAsync(RawMqttClient client)
    {
        var received = new HashSet<string>();
        var deadline = DateTime.UtcNow + Bound;
        try
        {
            while (received.Count < Topics && DateTime.UtcNow < deadline)
            {
                if (await client.ReceiveAsync(deadline - DateTime.UtcNow) is MqttPublishPacket p)
                {
                    Assert.True(p.Retain, $"{p.Topic} came without the retain flag");
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

    /// <summary>A v5 persistent session connected to node <paramref name="via"/> whose entity is not on <paramref name="victim"/>.</summary>
    private static async Task<(string Id, RawMqttClient Client)> SubscriberAsync(HttpClient http, ProcessCluster cluster, int via, int victim, string prefix)
    {
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var id = $"{prefix}-{attempt}";
            var (client, connAck) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, id,
                c => c with { SessionExpiryInterval = 600 });
            Assert.Equal(0, (int)connAck.ReasonCode);
            if (await SessionNodeAsync(http, cluster, via, id) != victim)
            {
                return (id, client);
            }

            await client.DisposeAsync();
        }

        throw new InvalidOperationException($"no session off node {victim} in 10 tries");
    }

    private static async Task<int> SessionNodeAsync(HttpClient http, ProcessCluster cluster, int via, string clientId)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{cluster.HttpPorts[via - 1]}/api/clients/{clientId}"));
        var node = json.RootElement.GetProperty("session").GetProperty("node").GetString()!;
        var port = int.Parse(node[(node.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return cluster.ClusterPorts.ToList().IndexOf(port) + 1;
    }
}
