using System.Diagnostics;
using Broker.Protocol;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// A QoS 1 publish fanned out to many persistent sessions is journaled once: the topic entity stores the payload,
/// each session only a reference. Counted in the real SQLite file of a real Broker.Node process; then kill -9 and a
/// new process on the same file: every session fetches its payloads again from the topic entity (which itself
/// recovered in the new process) and gets every message, in order, with the right bytes. Once every subscriber
/// acknowledged everything, and a session that nobody resumed expired, the topic holds no payload any more and its
/// journal rows are gone.
/// </summary>
public sealed class SharedPayloadSpecs : IDisposable
{
    private const int Subscribers = 40;
    private const int Messages = 30;
    private const int PayloadSize = 2000;
    private readonly ITestOutputHelper _output;
    private readonly List<IDisposable> _nodes = new();
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-shared-").FullName;

    public SharedPayloadSpecs(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task A_fan_out_to_many_persistent_sessions_stores_the_payload_once_and_every_session_gets_it_after_kill_9()
    {
        // A generous durable-ack timeout: the spec counts storage, and runs beside other node processes on 2 cores.
        string[] args = [$"--Node:DataDir={_dataDir}", "--Mqtt:DurableAckTimeout=60"];
        var run = Guid.NewGuid().ToString("N")[..8];
        var topic = $"shared/{run}/cmd";
        var subscribers = Enumerable.Range(0, Subscribers)
            .Select(i => (Version: i % 2 == 0 ? ClientVersion.V500 : ClientVersion.V311, Id: $"shared-{run}-{i}"))
            .ToList();
        var shortLivedId = $"shared-{run}-short";

        var node = await StartNodeAsync(args);
        foreach (var (version, id) in subscribers)
        {
            var (client, _) = await ConnectAsync(node.MqttPort, version, id, cleanStart: version == ClientVersion.V500, sessionExpiry: 3600);
            await client.SubscribeAsync(1, topic, MqttQoS.AtLeastOnce);
            await DisconnectAsync(client);
        }

        // A persistent session that nobody resumes: it expires after the restart and must release its references.
        var (shortLived, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, shortLivedId, cleanStart: true, sessionExpiry: 3);
        await shortLived.SubscribeAsync(1, topic, MqttQoS.AtLeastOnce);
        await DisconnectAsync(shortLived);

        var payloads = Enumerable.Range(0, Messages).Select(i => new string((char)('a' + (i % 26)), PayloadSize) + $"-{i:D5}").ToList();
        var (publisher, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, $"shared-pub-{run}", cleanStart: true);
        await using (publisher)
        {
            try
            {
                await PublishAllAsync(publisher, topic, MqttQoS.AtLeastOnce, payloads, window: 10);
            }
            catch
            {
                foreach (var line in node.Process.StdoutLines.TakeLast(60))
                {
                    _output.WriteLine("node: " + line);
                }

                throw;
            }
        }

        // Every publish was acknowledged, so it is stored for the 40 long-lived sessions (the short-lived one may have
        // expired already). Count what the journal holds.
        var deliveries = Subscribers * Messages;
        var sessions = $"persistence_id like 'session-shared-{run}-%' and persistence_id <> 'session-{shortLivedId}'";
        var (refRows, refBytes) = Query($"select count(*), coalesce(sum(length(message)), 0) from journal where {sessions} and manifest in ('se-qr', 'jb') and deleted = 0");
        var (inlineRows, _) = Query($"select count(*), 0 from journal where {sessions} and manifest = 'se-q' and deleted = 0");
        var (topicRows, topicBytes) = Query($"select count(*), coalesce(sum(length(message)), 0) from journal where persistence_id = 'topic-{topic}' and deleted = 0");
        _output.WriteLine($"{deliveries} stored deliveries of {PayloadSize + 6}-byte payloads: sessions {refRows} rows of references, {refBytes} bytes " +
            $"({refBytes / Math.Max(1, refRows)} per row), {inlineRows} inline rows; topic {topicRows} rows, {topicBytes} bytes");
        // One reference per delivery, several to a row when a session gathers them (group commit): the bytes show that
        // no payload went into a session's journal (the payloads alone would be over 2 KB per delivery).
        Assert.InRange(refRows, 1, deliveries);
        Assert.Equal(0, inlineRows);
        Assert.True(refBytes < deliveries * 200L, $"session references take {refBytes} bytes");
        Assert.InRange(topicBytes, (long)Messages * PayloadSize, 2L * Messages * PayloadSize); // each payload once, plus holder lists

        await node.KillHardAsync();
        _output.WriteLine($"killed node pid {node.Process.Pid}");
        node = await StartNodeAsync(args);

        var clock = Stopwatch.StartNew();
        foreach (var (version, id) in subscribers)
        {
            var (client, connAck) = await ConnectAsync(node.MqttPort, version, id, cleanStart: false, sessionExpiry: 3600);
            await using (client)
            {
                Assert.True(connAck.SessionPresent, $"{id}: session lost");
                var received = await ReceiveUntilAsync(client, r => r.Select(p => p.Payload).Distinct().Count() >= Messages, TimeSpan.FromSeconds(60));
                await DrainAsync(client, TimeSpan.FromMilliseconds(200), received);
                Assert.All(received, r => Assert.Equal(topic, r.Topic));

                // QoS 1: at least once, in order, every byte as published.
                Assert.Equal(payloads, received.Select(r => r.Payload).Distinct().ToList());
                await DisconnectAsync(client);
            }
        }

        _output.WriteLine($"{Subscribers} sessions resumed and received all {Messages} messages in {clock.ElapsedMilliseconds} ms");

        // All acknowledged, and the short-lived session expired: nothing holds the payloads, and their rows go (the
        // topic keeps its journal for its exact subscribers; a snapshot without payloads replaces the payload events).
        var payloadRows = $"select count(*), coalesce(sum(length(message)), 0) from journal where persistence_id = 'topic-{topic}' and manifest in ('te-ps', 'te-ph') and deleted = 0";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Query(payloadRows).Rows > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250);
        }

        var (rowsLeft, bytesLeft) = Query(payloadRows);
        var (snapshotRows, snapshotBytes) = Query($"select count(*), coalesce(sum(length(snapshot)), 0) from snapshot where persistence_id = 'topic-{topic}'");
        _output.WriteLine($"after acknowledgement: topic payload rows {rowsLeft} ({bytesLeft} bytes); topic snapshots {snapshotRows} ({snapshotBytes} bytes)");
        foreach (var line in node.Problems().Take(20))
        {
            _output.WriteLine("restarted node: " + line);
        }

        Assert.Equal(0, rowsLeft);
        Assert.True(snapshotBytes < PayloadSize, $"the topic snapshot still holds {snapshotBytes} bytes");
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private (long Rows, long Bytes) Query(string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(_dataDir, "broker.db"), Mode = SqliteOpenMode.ReadOnly, Pooling = false,
        }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private async Task<BrokerNodeProcess> StartNodeAsync(string[] args)
    {
        var node = await BrokerNodeProcess.StartAsync(args);
        _nodes.Add(node);
        _output.WriteLine($"node pid {node.Process.Pid} ready on MQTT port {node.MqttPort}");
        return node;
    }
}
