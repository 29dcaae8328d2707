using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>
/// Clean (non-persistent) sessions live only in memory, so those on a node that dies are lost, which the spec
/// allows. What must hold: their clients are closed cleanly (a v5 client on a surviving node whose session died hears
/// a DISCONNECT with a reason code valid for DISCONNECT) and can connect again elsewhere straight away, with a working
/// session. Twelve clean clients (v5 and 3.1.1) on each of three processes; node 1 gets SIGKILL.
/// </summary>
public sealed class CleanSessionFailoverSpecs
{
    private readonly ITestOutputHelper _output;

    public CleanSessionFailoverSpecs(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Clean_session_clients_of_a_dead_session_are_closed_cleanly_and_reconnect_elsewhere_at_once()
    {
        await using var cluster = await ProcessCluster.StartAsync();
        var run = Guid.NewGuid().ToString("N")[..6];
        var clients = new List<(string Id, ClientVersion Version, int Node, RawMqttClient Client)>();
        for (var node = 1; node <= 3; node++)
        {
            for (var i = 0; i < 12; i++)
            {
                var version = i % 2 == 0 ? ClientVersion.V500 : ClientVersion.V311;
                var id = $"clean-{run}-n{node}-{i}";
                var (client, _) = await ConnectAsync(cluster.MqttPorts[node - 1], version, id, cleanStart: true);
                clients.Add((id, version, node, client));
            }
        }

        var clock = Stopwatch.StartNew();
        await cluster.KillAsync(1);
        var killedAt = clock.ElapsedMilliseconds;

        // Every client of a lost session is closed; a v5 client on a survivor gets a valid DISCONNECT first (an
        // invalid reason code would make the decoder throw here). Clients whose session lived on a survivor stay.
        // A closed client connects again at once to a survivor, with a new clean session that works.
        var closed = new List<(string Id, ClientVersion Version, int Node, long AtMs, MqttReasonCode? Reason, long ReconnectMs, long SubscribedMs)>();
        await Task.WhenAll(clients.Select(async c =>
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(25);
            MqttReasonCode? reason = null;
            while (true)
            {
                MqttPacket? packet;
                try
                {
                    packet = await c.Client.ReceiveAsync(deadline - DateTime.UtcNow);
                }
                catch (TimeoutException)
                {
                    return; // still connected: its session is alive on a survivor
                }

                if (packet is MqttDisconnectPacket disconnect)
                {
                    reason = disconnect.ReasonCode;
                    continue;
                }

                Assert.Null(packet);
                break;
            }

            var closedAt = clock.ElapsedMilliseconds;
            var node = c.Node == 3 ? 3 : 2;
            // CONNACK comes at once when the client id's shard lives on a survivor. When it lived on the dead node, the
            // session can start only once that node is removed and the shard restarted (the failover time); until
            // then the broker answers CONNACK 0x88 (server unavailable) after its 10 s attach timeout, and the
            // client tries again, as clients do. Bounded.
            RawMqttClient client;
            var refusals = 0;
            var connectDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                client = await RawMqttClient.OpenAsync(cluster.MqttPorts[node - 1], c.Version);
                await client.SendAsync(new MqttConnectPacket { ProtocolVersion = client.Version, ClientId = c.Id, CleanStart = true });
                var connAck = await client.ExpectAsync<MqttConnAckPacket>(TimeSpan.FromSeconds(30));
                if (connAck.ReasonCode == 0)
                {
                    Assert.False(connAck.SessionPresent);
                    break;
                }

                Assert.Equal(c.Version == ClientVersion.V500 ? (byte)MqttReasonCode.ServerUnavailable : (byte)3, connAck.ReasonCode);
                await client.DisposeAsync();
                refusals++;
                Assert.True(DateTime.UtcNow < connectDeadline, $"{c.Id}: still refused after {refusals} tries");
            }

            var reconnectMs = clock.ElapsedMilliseconds - closedAt;
            await client.SendAsync(new MqttSubscribePacket
            {
                PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = $"clean/{run}/{c.Id}", QoS = MqttQoS.AtLeastOnce }],
            });
            var subAck = await client.ExpectAsync<MqttSubAckPacket>(TimeSpan.FromSeconds(45)); // its topic's shard may be moving too
            var subscribedMs = clock.ElapsedMilliseconds - closedAt;
            Assert.Equal(MqttReasonCode.GrantedQoS1, subAck.ReasonCodes[0]);
            var (publisher, _) = await ConnectAsync(cluster.MqttPorts[node - 1], ClientVersion.V500, $"{c.Id}-pub", cleanStart: true);
            await PublishAllAsync(publisher, $"clean/{run}/{c.Id}", MqttQoS.AtLeastOnce, ["hello-00000"]);
            await ReceiveUntilAsync(client, r => r.Any(m => m.Payload == "hello-00000"), TimeSpan.FromSeconds(30));
            await DisconnectAsync(publisher);
            await DisconnectAsync(client);
            lock (closed)
            {
                closed.Add((c.Id, c.Version, c.Node, closedAt, reason, reconnectMs, subscribedMs));
            }
        }));

        Assert.All(clients.Where(c => c.Node == 1), c => Assert.Contains(closed, x => x.Id == c.Id));
        var survivorsClosed = closed.Where(x => x.Node != 1).ToList();
        Assert.All(survivorsClosed.Where(x => x.Version == ClientVersion.V500), x => Assert.Equal(MqttReasonCode.ServerBusy, x.Reason));

        _output.WriteLine($"{closed.Count} of {clients.Count} clean clients closed (12 on the killed node, {survivorsClosed.Count} on survivors) " +
            $"between {closed.Min(c => c.AtMs) - killedAt} and {closed.Max(c => c.AtMs) - killedAt} ms after the kill; " +
            $"from the close to CONNACK on a survivor: {string.Join(", ", closed.Select(c => c.ReconnectMs).Order())} ms; " +
            $"to SUBACK: {string.Join(", ", closed.Select(c => c.SubscribedMs).Order())} ms");
        foreach (var c in clients.Where(c => !closed.Any(x => x.Id == c.Id)))
        {
            await DisconnectAsync(c.Client);
        }
    }
}
