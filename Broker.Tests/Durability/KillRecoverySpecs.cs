using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// The crash promise: whatever the broker acknowledged before a SIGKILL is there after a restart on the same
/// storage. Two persistent sessions (v5 with session expiry 3600, v3.1.1 with clean session 0) are offline while
/// 1,000 QoS 1 and 1,000 QoS 2 messages are published to each (every one acknowledged), a retained message is set,
/// and a third persistent client holds one QoS 1 message it received but did not acknowledge. Then kill -9 and a
/// new process on the same storage: every message arrives (QoS 2 exactly once, QoS 1 at least once, each topic in
/// order), the retained message is still there, and the unacknowledged message comes again with DUP and the same
/// packet id [MQTT-4.4.0-1], to a 3.1.1 and a v5 holder.
/// </summary>
public abstract class KillRecoverySpecs : IDisposable
{
    private const int Count = 1000;
    private readonly ITestOutputHelper _output;
    private readonly NodeProcesses _nodes = new("broker-kill-");

    protected KillRecoverySpecs(ITestOutputHelper output) => _output = output;

    /// <summary>The node's Node:DataDir (the SQLite file lives here by default); deleted after the spec.</summary>
    protected string DataDir => _nodes.DataDir;

    /// <summary>The storage flags; the same for the node before and after the kill.</summary>
    protected abstract Task<string[]> StorageArgsAsync();

    [Fact]
    public async Task Acknowledged_messages_sessions_retained_and_unacked_deliveries_should_survive_kill_9()
    {
        var storage = await StorageArgsAsync();
        string[] args = [.. storage, "--Sessions:MaxQueuedMessages=5000"];
        var run = Guid.NewGuid().ToString("N")[..8];
        var q1Topic = $"dur/{run}/q1";
        var q2Topic = $"dur/{run}/q2";
        var retainedTopic = $"dur/{run}/retained";
        var unackedTopic = $"dur/{run}/unacked";
        var subscribers = new (ClientVersion Version, string Id)[] { (ClientVersion.V500, $"kill-v5-{run}"), (ClientVersion.V311, $"kill-v311-{run}") };
        var holderId = $"kill-holder-{run}";
        var holderV5Id = $"kill-holder-v5-{run}";

        var node = await StartNodeAsync(args);
        foreach (var (version, id) in subscribers)
        {
            var (client, _) = await ConnectAsync(node.MqttPort, version, id, cleanStart: version == ClientVersion.V500, sessionExpiry: 3600);
            await client.SubscribeAsync(1, q1Topic, MqttQoS.AtLeastOnce);
            await client.SubscribeAsync(2, q2Topic, MqttQoS.ExactlyOnce);
            await DisconnectAsync(client);
        }

        var (holder, _) = await ConnectAsync(node.MqttPort, ClientVersion.V311, holderId, cleanStart: false);
        await using var holderBeforeKill = holder;
        await holder.SubscribeAsync(1, unackedTopic, MqttQoS.AtLeastOnce);
        var (holderV5, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, holderV5Id, cleanStart: true, sessionExpiry: 3600);
        await using var holderV5BeforeKill = holderV5;
        await holderV5.SubscribeAsync(1, unackedTopic, MqttQoS.AtLeastOnce);

        var clock = Stopwatch.StartNew();
        var (publisher, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, $"kill-pub-{run}", cleanStart: true);
        await using (publisher)
        {
            await PublishAllAsync(publisher, q1Topic, MqttQoS.AtLeastOnce, Payloads("q1", Count));
            await PublishAllAsync(publisher, q2Topic, MqttQoS.ExactlyOnce, Payloads("q2", Count));
            await PublishAllAsync(publisher, retainedTopic, MqttQoS.AtLeastOnce, ["kept-00001"], retain: true);
            await PublishAllAsync(publisher, unackedTopic, MqttQoS.AtLeastOnce, ["unacked-00001"]);
        }

        _output.WriteLine($"published and acknowledged {2 * Count + 2} messages in {clock.ElapsedMilliseconds} ms");

        // Delivered, never acknowledged.
        var unacked = await holder.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(10));
        var unackedV5 = await holderV5.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(10));
        Assert.False(unackedV5.Dup);
        Assert.Equal(MqttQoS.AtLeastOnce, unacked.QoS);
        Assert.False(unacked.Dup);

        await node.KillHardAsync();
        _output.WriteLine($"killed node pid {node.Process.Pid}");
        node = await StartNodeAsync(args);

        // The unacknowledged delivery: sent again, with DUP, under its original packet id, in 3.1.1 and v5 [MQTT-4.4.0-1].
        await ExpectResentAsync(node.MqttPort, ClientVersion.V311, holderId, unacked.PacketId);
        await ExpectResentAsync(node.MqttPort, ClientVersion.V500, holderV5Id, unackedV5.PacketId);

        foreach (var (version, id) in subscribers)
        {
            clock.Restart();
            var (client, connAck) = await ConnectAsync(node.MqttPort, version, id, cleanStart: false, sessionExpiry: 3600);
            await using (client)
            {
                Assert.True(connAck.SessionPresent, $"{id}: session lost");
                var received = await ReceiveUntilAsync(client, r => Complete(r, q1Topic, q2Topic), TimeSpan.FromSeconds(60));
                await DrainAsync(client, TimeSpan.FromMilliseconds(500), received); // anything extra would show here
                _output.WriteLine($"{id}: {received.Count} messages after reconnect in {clock.ElapsedMilliseconds} ms " +
                    $"({received.Count(r => r.Dup)} with DUP)");

                var q1 = received.Where(r => r.Topic == q1Topic).ToList();
                var q2 = received.Where(r => r.Topic == q2Topic).ToList();
                Assert.All(q1, r => Assert.Equal(MqttQoS.AtLeastOnce, r.QoS));
                Assert.All(q2, r => Assert.Equal(MqttQoS.ExactlyOnce, r.QoS));

                // QoS 1: at least once, in order (first occurrences are 0..999 ascending).
                Assert.Equal(Payloads("q1", Count), q1.Select(r => r.Payload).Distinct().ToList());

                // QoS 2: exactly once, in order.
                Assert.Equal(Payloads("q2", Count), q2.Select(r => r.Payload).ToList());
            }
        }

        var (reader, _) = await ConnectAsync(node.MqttPort, ClientVersion.V311, $"kill-reader-{run}", cleanStart: true);
        await using (reader)
        {
            await reader.SubscribeAsync(1, retainedTopic, MqttQoS.AtLeastOnce);
            var retained = await reader.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(10));
            Assert.True(retained.Retain);
            Assert.Equal("kept-00001", System.Text.Encoding.UTF8.GetString(retained.Payload.Span));
        }

        foreach (var line in node.Problems().Take(20))
        {
            _output.WriteLine("restarted node: " + line);
        }
    }

    public void Dispose() => _nodes.Dispose();

    private static async Task ExpectResentAsync(int port, ClientVersion version, string clientId, ushort packetId)
    {
        var (client, connAck) = await ConnectAsync(port, version, clientId, cleanStart: false, sessionExpiry: 3600);
        await using (client)
        {
            Assert.True(connAck.SessionPresent, $"{clientId}: session lost");
            var again = await client.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(30));
            Assert.Equal("unacked-00001", System.Text.Encoding.UTF8.GetString(again.Payload.Span));
            Assert.True(again.Dup, $"{clientId}: redelivery without DUP");
            Assert.Equal(packetId, again.PacketId);
            await client.SendAsync(new MqttPubAckPacket { PacketId = again.PacketId });
        }
    }

    private static bool Complete(IReadOnlyList<ReceivedPublish> received, string q1Topic, string q2Topic) =>
        received.Where(r => r.Topic == q1Topic).Select(r => r.Payload).Distinct().Count() >= Count &&
        received.Count(r => r.Topic == q2Topic) >= Count;

    private async Task<BrokerNodeProcess> StartNodeAsync(string[] args)
    {
        var clock = Stopwatch.StartNew();
        var node = await _nodes.StartAsync(args);
        _output.WriteLine($"node pid {node.Process.Pid} ready in {clock.ElapsedMilliseconds} ms on MQTT port {node.MqttPort}");
        return node;
    }
}

/// <summary><see cref="KillRecoverySpecs"/> on the default storage: SQLite in a temporary Node:DataDir.</summary>
public sealed class KillRecoverySqliteSpecs(ITestOutputHelper output) : KillRecoverySpecs(output)
{
    protected override Task<string[]> StorageArgsAsync() => Task.FromResult(new[] { $"--Node:DataDir={DataDir}" });
}

/// <summary><see cref="KillRecoverySpecs"/> on PostgreSQL (a fresh database on the throwaway server).</summary>
[Collection(PostgresCollection.Name)]
public sealed class KillRecoveryPostgresSpecs(ITestOutputHelper output, PostgresServer postgres) : KillRecoverySpecs(output)
{
    protected override async Task<string[]> StorageArgsAsync()
    {
        var connectionString = await postgres.CreateDatabaseAsync("kill_" + Guid.NewGuid().ToString("N")[..8]);
        return [$"--Node:DataDir={DataDir}", "--Storage:Provider=postgresql", $"--Storage:ConnectionString={connectionString}"];
    }
}

/// <summary>
/// <see cref="KillRecoverySpecs"/> with every fan-out stored once (Storage:SharedPayloadMinBytes=0): the two
/// subscribers' sessions journal references, the topic entities the payloads; after kill -9 the sessions fetch them
/// back from the recovered topic entities (QoS 2 still exactly once, in order).
/// </summary>
public sealed class KillRecoverySharedPayloadSqliteSpecs(ITestOutputHelper output) : KillRecoverySpecs(output)
{
    protected override Task<string[]> StorageArgsAsync() =>
        Task.FromResult(new[] { $"--Node:DataDir={DataDir}", "--Storage:SharedPayloadMinBytes=0" });
}

/// <summary>The shared-payload form of <see cref="KillRecoverySpecs"/> on PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed class KillRecoverySharedPayloadPostgresSpecs(ITestOutputHelper output, PostgresServer postgres) : KillRecoverySpecs(output)
{
    protected override async Task<string[]> StorageArgsAsync()
    {
        var connectionString = await postgres.CreateDatabaseAsync("kills_" + Guid.NewGuid().ToString("N")[..8]);
        return [$"--Node:DataDir={DataDir}", "--Storage:Provider=postgresql", $"--Storage:ConnectionString={connectionString}",
            "--Storage:SharedPayloadMinBytes=0"];
    }
}
