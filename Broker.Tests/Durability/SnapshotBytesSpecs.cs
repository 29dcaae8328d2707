using Broker.Protocol;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// Storage:SnapshotEveryBytes: large messages flowing through a connected persistent session do not pile up in its
/// journal until Storage:SnapshotEvery events. 40 QoS 1 messages of 128 KB (5 MB, far fewer than 1,000 events) pass
/// through a session that reads them as they come, with the bound at 1 MiB: once they are acknowledged, a snapshot
/// has been taken and the session's journal holds well under the 5 MB that went through it.
/// </summary>
public sealed class SnapshotBytesSpecs(ITestOutputHelper output) : IDisposable
{
    private const int Messages = 40;
    private const int Size = 128 * 1024;
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-snapbytes-").FullName;
    private BrokerNodeProcess? _node;

    [Fact]
    public async Task Large_messages_through_a_session_should_be_snapshotted_away_by_bytes()
    {
        _node = await BrokerNodeProcess.StartAsync($"--Node:DataDir={_dataDir}", "--Storage:SnapshotEveryBytes=1048576");
        var run = Guid.NewGuid().ToString("N")[..8];
        var topic = $"snapbytes/{run}";
        var subscriberId = $"snapbytes-sub-{run}";

        var (subscriber, _) = await ConnectAsync(_node.MqttPort, ClientVersion.V311, subscriberId, cleanStart: false);
        await using var sub = subscriber;
        await subscriber.SubscribeAsync(1, topic, MqttQoS.AtLeastOnce);
        var payloads = Enumerable.Range(0, Messages).Select(i => new string('x', Size - 6) + $"{i:D6}").ToList();
        var (publisher, _) = await ConnectAsync(_node.MqttPort, ClientVersion.V311, $"snapbytes-pub-{run}", cleanStart: true);
        await using (publisher)
        {
            var publishing = PublishAllAsync(publisher, topic, MqttQoS.AtLeastOnce, payloads, window: 10);
            var received = await ReceiveUntilAsync(subscriber, r => r.Count >= Messages, TimeSpan.FromSeconds(60));
            await publishing;
            Assert.Equal(payloads, received.Select(r => r.Payload).ToList());
        }

        // The snapshot and the deletion it allows come after the last completion is stored: wait for them (bounded).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        (long Rows, long Bytes, long Snapshots) journal;
        do
        {
            await Task.Delay(200);
            journal = Journal("session-" + subscriberId);
        }
        while ((journal.Snapshots == 0 || journal.Bytes >= Messages * (long)Size / 4) && DateTime.UtcNow < deadline);

        output.WriteLine($"{Messages * (long)Size} payload bytes went through; the journal holds {journal.Rows} rows of {journal.Bytes} bytes, {journal.Snapshots} snapshot(s)");
        Assert.True(journal.Snapshots > 0, "no snapshot after 5 MB through the session");
        Assert.True(journal.Bytes < Messages * (long)Size / 4, $"the journal still holds {journal.Bytes} bytes");
    }

    private (long Rows, long Bytes, long Snapshots) Journal(string persistenceId)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_dataDir, "broker.db")}");
        connection.Open();
        using (var busy = connection.CreateCommand())
        {
            busy.CommandText = "PRAGMA busy_timeout = 5000";
            busy.ExecuteScalar();
        }

        using var command = connection.CreateCommand();
        command.CommandText =
            "SELECT count(*), coalesce(sum(length(message)), 0), (SELECT count(*) FROM snapshot WHERE persistence_id = $id) " +
            "FROM journal WHERE persistence_id = $id AND deleted = 0";
        command.Parameters.AddWithValue("$id", persistenceId);
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    public void Dispose()
    {
        _node?.Dispose();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
