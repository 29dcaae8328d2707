using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// A measurement more than a rule: 10,000 QoS 1 messages queued for an offline persistent session on SQLite, kill -9,
/// restart, reconnect. All 10,000 must arrive, in order; the time from CONNECT to CONNACK (the session's recovery
/// from the journal) and to the last message is printed, not asserted. BROKER_RECOVERY_MESSAGES sets another count for
/// a measurement by hand (docs/benchmarks.md: 100,000).
/// </summary>
public sealed class SessionRecoverySpecs(ITestOutputHelper output) : IDisposable
{
    private static readonly int Count = int.TryParse(Environment.GetEnvironmentVariable("BROKER_RECOVERY_MESSAGES"), out var n) && n > 0 ? n : 10_000;
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-recovery-").FullName;
    private readonly List<BrokerNodeProcess> _nodes = new();

    [Fact]
    public async Task Ten_thousand_queued_messages_should_all_arrive_in_order_after_kill_9()
    {
        string[] args = [$"--Node:DataDir={_dataDir}", $"--Sessions:MaxQueuedMessages={2 * Count}"];
        var run = Guid.NewGuid().ToString("N")[..8];
        var topic = $"recovery/{run}";
        var clientId = $"recovery-sub-{run}";

        var node = Start(await BrokerNodeProcess.StartAsync(args));
        var (subscriber, _) = await ConnectAsync(node.MqttPort, ClientVersion.V311, clientId, cleanStart: false);
        await subscriber.SubscribeAsync(1, topic, MqttQoS.AtLeastOnce);
        await DisconnectAsync(subscriber);

        var clock = Stopwatch.StartNew();
        var (publisher, _) = await ConnectAsync(node.MqttPort, ClientVersion.V311, $"recovery-pub-{run}", cleanStart: true);
        await using (publisher)
        {
            await PublishAllAsync(publisher, topic, MqttQoS.AtLeastOnce, Payloads("m", Count), window: 200);
        }

        output.WriteLine($"{Count} messages queued and acknowledged in {clock.ElapsedMilliseconds} ms");
        await node.KillHardAsync();
        clock.Restart();
        node = Start(await BrokerNodeProcess.StartAsync(args));
        output.WriteLine($"node restarted in {clock.ElapsedMilliseconds} ms");

        var client = await RawMqttClient.OpenAsync(node.MqttPort, ClientVersion.V311);
        clock.Restart();
        await client.SendAsync(new MqttConnectPacket { ProtocolVersion = client.Version, ClientId = clientId, CleanStart = false });
        var connAck = await client.ExpectAsync<MqttConnAckPacket>(TimeSpan.FromSeconds(60));
        var connAckAt = clock.ElapsedMilliseconds;
        await using (client)
        {
            Assert.Equal(0, connAck.ReasonCode);
            Assert.True(connAck.SessionPresent, "session lost");
            var received = await ReceiveUntilAsync(
                client, r => r.Count > 0 && Seq(r[^1].Payload) == Count - 1, TimeSpan.FromSeconds(120));
            var lastAt = clock.ElapsedMilliseconds;
            output.WriteLine($"CONNECT to CONNACK {connAckAt} ms; CONNECT to message {Count} {lastAt} ms " +
                $"({received.Count} received, {received.Count(r => r.Dup)} with DUP)");
            Assert.Equal(Payloads("m", Count), received.Select(r => r.Payload).Distinct().ToList());
        }
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private BrokerNodeProcess Start(BrokerNodeProcess node)
    {
        _nodes.Add(node);
        return node;
    }
}
