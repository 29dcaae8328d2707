using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// Group commit: a persistent session that takes messages faster than one journal round trip writes them many to a
/// row, and a kill -9 in the middle of such a flood, with rows half-gathered and on their way, loses nothing that was
/// acknowledged. One offline persistent subscriber (v5) takes a QoS 1 and a QoS 2 flood; one connected persistent
/// subscriber (3.1.1) reads and acknowledges the QoS 1 flood while it runs (so its journal gathers queued, sent and
/// completed events together). The node is killed while both publishers still have messages in flight. After the
/// restart every acknowledged message arrives (QoS 2 exactly once, in order; QoS 1 at least once, in order of first
/// arrival), and the offline session's journal held fewer rows than the messages it stored.
/// </summary>
public sealed class GroupCommitSpecs(ITestOutputHelper output) : IDisposable
{
    private const int Max = 20_000;
    private readonly NodeProcesses _nodes = new("broker-group-");

    [Fact]
    public async Task A_kill_9_mid_flood_should_lose_no_acknowledged_message_and_rows_should_hold_many_events()
    {
        // Snapshots off, so that every row the flood wrote is still there to count.
        string[] args = [$"--Node:DataDir={_nodes.DataDir}", "--Sessions:MaxQueuedMessages=100000", "--Storage:SnapshotEvery=1000000"];
        var run = Guid.NewGuid().ToString("N")[..8];
        var q1Topic = $"group/{run}/q1";
        var q2Topic = $"group/{run}/q2";
        var offlineId = $"group-offline-{run}";
        var onlineId = $"group-online-{run}";

        var node = await _nodes.StartAsync(args);
        var (offline, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, offlineId, cleanStart: true, sessionExpiry: 3600);
        await offline.SubscribeAsync(1, q1Topic, MqttQoS.AtLeastOnce);
        await offline.SubscribeAsync(2, q2Topic, MqttQoS.ExactlyOnce);
        await DisconnectAsync(offline);

        var (online, _) = await ConnectAsync(node.MqttPort, ClientVersion.V311, onlineId, cleanStart: false);
        await online.SubscribeAsync(1, q1Topic, MqttQoS.AtLeastOnce);
        var onlineReceived = new List<ReceivedPublish>();
        using var stopReading = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            try
            {
                await ReceiveUntilAsync(online, _ => stopReading.IsCancellationRequested, TimeSpan.FromSeconds(60), onlineReceived);
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException)
            {
                // The node was killed under it.
            }
        });

        var (p1, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, $"group-p1-{run}", cleanStart: true);
        var (p2, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, $"group-p2-{run}", cleanStart: true);
        var acked1 = new List<string>();
        var acked2 = new List<string>();
        var underWay = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ackedSoFar = 0;
        void Acked()
        {
            if (Interlocked.Increment(ref ackedSoFar) >= 3000)
            {
                underWay.TrySetResult();
            }
        }

        var flood1 = FloodAsync(p1, q1Topic, MqttQoS.AtLeastOnce, "q1", acked1, Acked, Max);
        var flood2 = FloodAsync(p2, q2Topic, MqttQoS.ExactlyOnce, "q2", acked2, Acked, Max);

        // Kill once the floods are well under way (thousands acknowledged), while both still have messages in flight.
        await Task.WhenAny(underWay.Task, flood1, flood2, Task.Delay(TimeSpan.FromSeconds(60)));

        Assert.False(flood1.IsCompleted || flood2.IsCompleted, "a flood ended before the kill (raise Max)");
        await node.KillHardAsync();
        await Task.WhenAll(flood1, flood2);
        stopReading.Cancel();
        await reading;
        await p1.DisposeAsync();
        await p2.DisposeAsync();
        await online.DisposeAsync();
        output.WriteLine($"killed with {acked1.Count} QoS 1 and {acked2.Count} QoS 2 publishes acknowledged; online subscriber had {onlineReceived.Count}");
        Assert.True(acked1.Count + acked2.Count >= 1000, "too few acknowledged before the kill to mean anything");

        var (rows, batchRows) = JournalRows("session-" + offlineId);
        output.WriteLine($"offline session: {rows} journal rows ({batchRows} of several events) for {acked1.Count + acked2.Count} acknowledged messages");
        Assert.True(batchRows > 0, "no row held several events");
        Assert.True(rows < acked1.Count + acked2.Count, $"{rows} rows for {acked1.Count + acked2.Count} stored messages: no group commit");

        node = await _nodes.StartAsync(args);
        var (again, connAck) = await ConnectAsync(node.MqttPort, ClientVersion.V500, offlineId, cleanStart: false, sessionExpiry: 3600);
        await using (again)
        {
            Assert.True(connAck.SessionPresent, "offline session lost");
            var received = await ReceiveUntilAsync(again, r => Has(r, q1Topic, acked1) && Has(r, q2Topic, acked2), TimeSpan.FromSeconds(90));
            await DrainAsync(again, TimeSpan.FromMilliseconds(500), received);
            var q1 = received.Where(r => r.Topic == q1Topic).Select(r => r.Payload).Distinct().ToList();
            var q2 = received.Where(r => r.Topic == q2Topic).Select(r => r.Payload).ToList();
            output.WriteLine($"offline session after restart: {q1.Count} QoS 1 (distinct), {q2.Count} QoS 2");

            // In order: the acknowledged ones are a prefix of what arrived (a message in flight at the kill may follow).
            Assert.Equal(acked1, q1.Take(acked1.Count));
            Assert.Equal(acked2, q2.Take(acked2.Count));
            Assert.Equal(q2.Count, q2.Distinct().Count()); // QoS 2: no duplicate
            AssertSequential(q1);
            AssertSequential(q2);
        }

        var (onlineAgain, onlineAck) = await ConnectAsync(node.MqttPort, ClientVersion.V311, onlineId, cleanStart: false);
        await using (onlineAgain)
        {
            Assert.True(onlineAck.SessionPresent, "online subscriber's session lost");
            var rest = await ReceiveUntilAsync(onlineAgain, r => onlineReceived.Concat(r).Where(x => x.Topic == q1Topic).Select(x => x.Payload)
                .ToHashSet().IsSupersetOf(Snapshot(acked1)), TimeSpan.FromSeconds(90));
            output.WriteLine($"online subscriber after restart: {rest.Count} more");
        }
    }

    private static HashSet<string> Snapshot(List<string> acked)
    {
        lock (acked)
        {
            return acked.ToHashSet();
        }
    }

    private static bool Has(IReadOnlyList<ReceivedPublish> received, string topic, List<string> acked) =>
        received.Where(r => r.Topic == topic).Select(r => r.Payload).ToHashSet().IsSupersetOf(acked);

    /// <summary>First arrivals are 0, 1, 2, ... with no gap.</summary>
    private static void AssertSequential(List<string> payloads)
    {
        for (var i = 0; i < payloads.Count; i++)
        {
            Assert.Equal(i, Seq(payloads[i]));
        }
    }

    private (long Rows, long BatchRows) JournalRows(string persistenceId)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_nodes.DataDir, "broker.db")}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*), coalesce(sum(manifest = 'jb'), 0) FROM journal WHERE persistence_id = $id";
        command.Parameters.AddWithValue("$id", persistenceId);
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    public void Dispose() => _nodes.Dispose();
}
