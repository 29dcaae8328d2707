using System.Text;
using System.Text.Json;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>
/// Per-publisher order of QoS 2 and QoS 1 messages ([MQTT-4.6.0-6]) when a routing is lost with a failed node, on three
/// Broker.Node processes. The interleaving that broke it in a kill -9 failover, forced step by step:
/// <list type="number">
/// <item>the subscriber's persistent session lives on node V, two QoS 2 publishers' (3.1.1, clean session 0, each on
/// its own topic) elsewhere, and a QoS 1 publisher (5.0) is connected elsewhere, on a third topic;</item>
/// <item>V is killed (SIGKILL; downing through the failure detector and the split-brain resolver, so V stays a member
/// for some seconds); each publisher sends m2, whose routing goes to V and is lost;</item>
/// <item>one QoS 2 publisher's connection drops and it comes back while V is still a member (its session routes m2
/// again, and that routing is lost too); the other publishers stay, with m2 unanswered (clients with more than one
/// message in flight);</item>
/// <item>once every survivor has removed V, each sends m3: a routing now reaches the subscriber's session recovered
/// elsewhere at once, while m2 is routed again only when V's shards have moved.</item>
/// </list>
/// The subscriber must get each publisher's m1, m2, m3 in that order, each once.
/// </summary>
public sealed class OrderAfterLostRoutingSpecs
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(40);
    private readonly ITestOutputHelper _output;

    public OrderAfterLostRoutingSpecs(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task A_message_whose_routing_was_lost_with_a_node_reaches_the_subscriber_before_the_next_one_of_its_publisher()
    {
        // Downing by the resolver only (~2.5 s detection + 3 s stable-after): the window in which routings to V are lost.
        // DurableAckTimeout 30 s: no publish is given up on while the node is being replaced.
        // MaxPublisherHold 20 s: nor is the QoS 1 publisher's m2 refused for waiting.
        await using var cluster = await ProcessCluster.StartWithOperationsAsync("--Cluster:DownEndedNodes=false", "--Mqtt:DurableAckTimeout=30",
            "--Sessions:MaxPublisherHold=20");
        using var http = ProcessCluster.ManagementClient();
        var run = Guid.NewGuid().ToString("N")[..6];

        // The subscriber's session: subscribed, then offline (its queue keeps what arrives).
        var subscriberId = $"ord-sub-{run}";
        var (subscriber, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[0], ClientVersion.V500, subscriberId,
            c => c with { SessionExpiryInterval = 600 });
        await subscriber.SubscribeAsync(1, $"order/{run}/#", MqttQoS.ExactlyOnce);
        var victim = await cluster.SessionNodeAsync(http, 1, subscriberId);
        await subscriber.SendAsync(MqttDisconnectPacket.Normal);
        await subscriber.DisposeAsync();

        // Two publishers on a survivor, each on its own topic, whose sessions are not on the victim: one will come back
        // on a new connection after m2, the other stays with m2 unanswered.
        var via = Enumerable.Range(1, 3).First(n => n != victim);
        var (comesBackId, comesBack) = await cluster.ConnectAwayFromAsync(http, via, victim, $"ord-back-{run}", ClientVersion.V311, c => c with { CleanStart = false });
        var (staysId, stays) = await cluster.ConnectAwayFromAsync(http, via, victim, $"ord-stay-{run}", ClientVersion.V311, c => c with { CleanStart = false });
        await using var _stays = stays;
        var (qos1, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, $"ord-q1-{run}");
        await using var _qos1 = qos1;
        _output.WriteLine($"subscriber's session on node {victim}; publishers on node {via}");
        var backTopic = $"order/{run}/back";
        var stayTopic = $"order/{run}/stay";
        var qos1Topic = $"order/{run}/q1";

        // m1 end to end: every region on the way knows where the subscriber's session lives.
        await PublishAsync(comesBack, 1, backTopic, "back-m1");
        await PublishAsync(stays, 1, stayTopic, "stay-m1");
        await PublishAsync(qos1, 1, qos1Topic, "q1-m1", MqttQoS.AtLeastOnce);
        await Task.WhenAll(CompleteAsync(comesBack, [1]), CompleteAsync(stays, [1]), CompleteAsync(qos1, [1]));

        await cluster.KillAsync(victim);
        await PublishAsync(comesBack, 2, backTopic, "back-m2"); // routed to the dead node: lost
        await PublishAsync(stays, 2, stayTopic, "stay-m2");
        await PublishAsync(qos1, 2, qos1Topic, "q1-m2", MqttQoS.AtLeastOnce);

        // One gives up on its connection and comes back while the victim is still a member (to the same node: one whose
        // session region knows where its session lives, even if the shard coordinator died); its session routes m2
        // again, and that routing is lost too.
        // A ping answered behind m2 shows the broker read m2 and handed it to the session (a connection handles its
        // packets in order) before the connection is cut.
        await comesBack.SendAsync(MqttPingReqPacket.Instance);
        await comesBack.ExpectAsync<MqttPingRespPacket>();
        comesBack.Abort();
        await comesBack.DisposeAsync();
        var (back, backAck) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V311, comesBackId,
            c => c with { CleanStart = false });
        await using var _back = back;
        Assert.True(backAck.SessionPresent, "the publisher's session must be present");
        Assert.True(await IsMemberAsync(http, cluster, via, victim),
            $"node {victim} was removed before m2 was routed (again): the spec did not force the interleaving");

        // Once every survivor has removed the victim, m3: a routing now goes through.
        var deadline = DateTime.UtcNow + Bound;
        foreach (var n in Enumerable.Range(1, 3).Where(n => n != victim))
        {
            while (await IsMemberAsync(http, cluster, n, victim))
            {
                Assert.True(DateTime.UtcNow < deadline, $"node {victim} still a member of node {n}'s cluster");
                await Task.Delay(50);
            }
        }

        await PublishAsync(back, 3, backTopic, "back-m3");
        await PublishAsync(stays, 3, stayTopic, "stay-m3");
        await PublishAsync(qos1, 3, qos1Topic, "q1-m3", MqttQoS.AtLeastOnce);
        // m2's PUBREC comes (on the new connection for the one that came back) once it is stored everywhere.
        await Task.WhenAll(CompleteAsync(back, [2, 3]), CompleteAsync(stays, [2, 3]), CompleteAsync(qos1, [2, 3]));

        // The subscriber comes back to a survivor and takes its queue.
        var (again, againAck) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[via - 1], ClientVersion.V500, subscriberId,
            c => c with { CleanStart = false, SessionExpiryInterval = 600 });
        await using var _again = again;
        Assert.True(againAck.SessionPresent);
        var received = await ReceiveAsync(again, 9);
        _output.WriteLine($"received: {string.Join(", ", received)}");
        bool InOrder(string publisher, bool once) =>
            (once ? received : received.Distinct()).Where(r => r.StartsWith(publisher + "-", StringComparison.Ordinal))
                .SequenceEqual([publisher + "-m1", publisher + "-m2", publisher + "-m3"]);
        Assert.True(InOrder("back", once: true) && InOrder("stay", once: true) && InOrder("q1", once: false),
            $"each publisher's m1, m2, m3 in order (QoS 2 once); received {string.Join(", ", received)}");
    }


    private static Task PublishAsync(RawMqttClient client, ushort packetId, string topic, string payload, MqttQoS qos = MqttQoS.ExactlyOnce) =>
        client.SendAsync(new MqttPublishPacket { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), QoS = qos, PacketId = packetId });

    /// <summary>Completes the QoS 1 or 2 flows of <paramref name="packetIds"/> (PUBACK; PUBREC, PUBREL, PUBCOMP), in whatever order they come.</summary>
    private static async Task CompleteAsync(RawMqttClient client, ushort[] packetIds)
    {
        var open = packetIds.ToHashSet();
        var deadline = DateTime.UtcNow + Bound;
        while (open.Count > 0)
        {
            var packet = await client.ReceiveAsync(deadline - DateTime.UtcNow);
            switch (packet)
            {
                case MqttPubRecPacket rec:
                    Assert.Equal(MqttReasonCode.Success, rec.ReasonCode);
                    await client.SendAsync(new MqttPubRelPacket { PacketId = rec.PacketId });
                    break;
                case MqttPubCompPacket comp:
                    open.Remove(comp.PacketId);
                    break;
                case MqttPubAckPacket ack:
                    Assert.Equal(MqttReasonCode.Success, ack.ReasonCode);
                    open.Remove(ack.PacketId);
                    break;
                case null:
                    Assert.Fail($"the broker closed the publisher's connection with {string.Join(",", open)} open");
                    break;
                default:
                    Assert.Fail($"unexpected {packet.Type} while publishing");
                    break;
            }
        }
    }

    /// <summary>
    /// Takes messages until <paramref name="count"/> distinct ones came: QoS 2 by method B (a retransmitted id is
    /// answered, not taken again), QoS 1 as they come (a duplicate is listed again).
    /// </summary>
    private static async Task<List<string>> ReceiveAsync(RawMqttClient client, int count)
    {
        var taken = new List<string>();
        var awaitingRel = new HashSet<ushort>();
        var deadline = DateTime.UtcNow + Bound;
        while (taken.Distinct().Count() < count || awaitingRel.Count > 0)
        {
            var packet = await client.ReceiveAsync(deadline - DateTime.UtcNow);
            switch (packet)
            {
                case MqttPublishPacket { QoS: MqttQoS.AtLeastOnce } p:
                    taken.Add(Encoding.UTF8.GetString(p.Payload.Span));
                    await client.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
                    break;
                case MqttPublishPacket p:
                    if (awaitingRel.Add(p.PacketId))
                    {
                        taken.Add(Encoding.UTF8.GetString(p.Payload.Span));
                    }

                    await client.SendAsync(new MqttPubRecPacket { PacketId = p.PacketId });
                    break;
                case MqttPubRelPacket rel:
                    awaitingRel.Remove(rel.PacketId);
                    await client.SendAsync(new MqttPubCompPacket { PacketId = rel.PacketId });
                    break;
                case null:
                    Assert.Fail($"the broker closed the subscriber's connection after {string.Join(", ", taken)}");
                    break;
            }
        }

        // Nothing more may follow (a message taken twice would be a duplicate).
        try
        {
            var extra = await client.ReceiveAsync(TimeSpan.FromMilliseconds(500));
            if (extra is MqttPublishPacket p)
            {
                taken.Add(Encoding.UTF8.GetString(p.Payload.Span));
            }
        }
        catch (TimeoutException)
        {
        }

        return taken;
    }


    private static async Task<bool> IsMemberAsync(HttpClient http, ProcessCluster cluster, int via, int node)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{cluster.HttpPorts[via - 1]}/api/cluster/members"));
        var suffix = $":{cluster.ClusterPorts[node - 1]}";
        return json.RootElement.GetProperty("members").EnumerateArray().Any(m => m.GetProperty("address").GetString()!.EndsWith(suffix, StringComparison.Ordinal));
    }
}
