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
/// Per-publisher order of QoS 2 messages ([MQTT-4.6.0-6]) when a routing is lost with a failed node, on three
/// Broker.Node processes. The interleaving that broke it in a kill -9 failover, forced step by step:
/// <list type="number">
/// <item>the subscriber's persistent session lives on node V, the publisher's (3.1.1, clean session 0) elsewhere;</item>
/// <item>V is killed (SIGKILL; downing through the failure detector and the split-brain resolver, so V stays a member
/// for some seconds); the publisher sends m2, whose routing goes to V and is lost;</item>
/// <item>either the publisher's connection drops and it comes back while V is still a member (its session routes m2
/// again, and that routing is lost too), or it stays, with m2 unanswered (a client with more than one message in
/// flight);</item>
/// <item>once every survivor has removed V, the publisher sends m3: a routing now reaches the subscriber's session
/// recovered elsewhere at once, while m2 is routed again only when V's shards have moved.</item>
/// </list>
/// The subscriber must get m1, m2, m3 in that order, each once.
/// </summary>
public sealed class Qos2OrderAfterLostRoutingSpecs
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(40);
    private readonly ITestOutputHelper _output;

    public Qos2OrderAfterLostRoutingSpecs(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_QoS_2_message_whose_routing_was_lost_with_a_node_reaches_the_subscriber_before_the_next_one(bool publisherComesBack)
    {
        // Downing by the resolver only (~2.5 s detection + 3 s stable-after): the window in which routings to V are lost.
        // DurableAckTimeout 30 s: no publish is given up on while the node is being replaced.
        await using var cluster = await ProcessCluster.StartWithOperationsAsync("--Cluster:DownEndedNodes=false", "--Mqtt:DurableAckTimeout=30");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ProcessCluster.ManagementToken);
        var run = Guid.NewGuid().ToString("N")[..6];
        var topic = $"order/{run}/t";

        // The subscriber's session: subscribed, then offline (its queue keeps what arrives).
        var subscriberId = $"ord-sub-{run}";
        var (subscriber, _) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[0], ClientVersion.V500, subscriberId,
            c => c with { SessionExpiryInterval = 600 });
        await subscriber.SubscribeAsync(1, $"order/{run}/#", MqttQoS.ExactlyOnce);
        var victim = await SessionNodeAsync(http, cluster, 1, subscriberId);
        await subscriber.SendAsync(MqttDisconnectPacket.Normal);
        await subscriber.DisposeAsync();

        // A publisher whose session is not on the victim (sessions go to the least loaded node: a few tries at most).
        var survivors = Enumerable.Range(1, 3).Where(n => n != victim).ToArray();
        RawMqttClient? publisher = null;
        string publisherId = "";
        for (var attempt = 0; attempt < 10 && publisher is null; attempt++)
        {
            publisherId = $"ord-pub-{run}-{attempt}";
            var (client, connAck) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[survivors[0] - 1], ClientVersion.V311, publisherId,
                c => c with { CleanStart = false });
            Assert.Equal(0, (int)connAck.ReasonCode);
            if (await SessionNodeAsync(http, cluster, survivors[0], publisherId) != victim)
            {
                publisher = client;
            }
            else
            {
                await client.DisposeAsync();
            }
        }

        Assert.NotNull(publisher);
        _output.WriteLine($"subscriber's session on node {victim}; publisher {publisherId} on node {survivors[0]}");

        // m1 end to end: every region on the way knows where the subscriber's session lives.
        await PublishAsync(publisher, 1, topic, "m1");
        await CompleteAsync(publisher, [1]);

        await cluster.KillAsync(victim);
        await PublishAsync(publisher, 2, topic, "m2"); // routed to the dead node: lost

        await Task.Delay(300);
        var back = publisher;
        if (publisherComesBack)
        {
            // It gives up on that connection and comes back while the victim is still a member (to the same node: one
            // whose session region knows where the publisher's session lives, even if the shard coordinator died).
            publisher.Abort();
            await publisher.DisposeAsync();
            (back, var backAck) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[survivors[0] - 1], ClientVersion.V311, publisherId,
                c => c with { CleanStart = false });
            Assert.True(backAck.SessionPresent, "the publisher's session must be present");
        }

        await using var _back = back;
        Assert.True(await IsMemberAsync(http, cluster, survivors[0], victim),
            $"node {victim} was removed before m2 was routed (again): the spec did not force the interleaving");

        // Once every survivor has removed the victim, m3: a routing now goes through.
        var deadline = DateTime.UtcNow + Bound;
        foreach (var n in survivors)
        {
            while (await IsMemberAsync(http, cluster, n, victim))
            {
                Assert.True(DateTime.UtcNow < deadline, $"node {victim} still a member of node {n}'s cluster");
                await Task.Delay(50);
            }
        }

        await PublishAsync(back, 3, topic, "m3");
        await CompleteAsync(back, [2, 3]); // m2's PUBREC comes on this connection once it is stored everywhere

        // The subscriber comes back to a survivor and takes its queue.
        var (again, againAck) = await RawMqttClient.ConnectAsync(cluster.MqttPorts[survivors[0] - 1], ClientVersion.V500, subscriberId,
            c => c with { CleanStart = false, SessionExpiryInterval = 600 });
        await using var _again = again;
        Assert.True(againAck.SessionPresent);
        var received = await ReceiveAsync(again, 3);
        _output.WriteLine($"received: {string.Join(", ", received)}");
        Assert.Equal(["m1", "m2", "m3"], received);
    }

    private static Task PublishAsync(RawMqttClient client, ushort packetId, string topic, string payload) =>
        client.SendAsync(new MqttPublishPacket { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), QoS = MqttQoS.ExactlyOnce, PacketId = packetId });

    /// <summary>Completes the QoS 2 flows of <paramref name="packetIds"/> (PUBREC, PUBREL, PUBCOMP), in whatever order they come.</summary>
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
                case null:
                    Assert.Fail($"the broker closed the publisher's connection with {string.Join(",", open)} open");
                    break;
                default:
                    Assert.Fail($"unexpected {packet.Type} while publishing");
                    break;
            }
        }
    }

    /// <summary>Takes <paramref name="count"/> QoS 2 messages (method B: a retransmitted id is answered, not taken again).</summary>
    private static async Task<List<string>> ReceiveAsync(RawMqttClient client, int count)
    {
        var taken = new List<string>();
        var awaitingRel = new HashSet<ushort>();
        var deadline = DateTime.UtcNow + Bound;
        while (taken.Count < count || awaitingRel.Count > 0)
        {
            var packet = await client.ReceiveAsync(deadline - DateTime.UtcNow);
            switch (packet)
            {
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

    /// <summary>The node (1..3) where <paramref name="clientId"/>'s session entity lives, asked through node <paramref name="via"/>.</summary>
    private static async Task<int> SessionNodeAsync(HttpClient http, ProcessCluster cluster, int via, string clientId)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{cluster.HttpPorts[via - 1]}/api/clients/{clientId}"));
        var node = json.RootElement.GetProperty("session").GetProperty("node").GetString()!;
        var port = int.Parse(node[(node.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return cluster.ClusterPorts.ToList().IndexOf(port) + 1;
    }

    private static async Task<bool> IsMemberAsync(HttpClient http, ProcessCluster cluster, int via, int node)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{cluster.HttpPorts[via - 1]}/api/cluster/members"));
        var suffix = $":{cluster.ClusterPorts[node - 1]}";
        return json.RootElement.GetProperty("members").EnumerateArray().Any(m => m.GetProperty("address").GetString()!.EndsWith(suffix, StringComparison.Ordinal));
    }
}
