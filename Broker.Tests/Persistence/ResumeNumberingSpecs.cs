using System.Data.Common;
using System.Text;
using Akka.Actor;
using Broker.Configuration;
using Broker.Operations;
using Broker.Routing;
using Broker.Tests.Durability;
using Broker.Tests.EndToEnd;
using Microsoft.Data.Sqlite;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Npgsql;

namespace Broker.Tests.Persistence;

/// <summary>
/// A session read back from storage after a restart numbers its next journal events after the highest sequence
/// number stored for it, which its read returns: after the snapshot's and after rows marked deleted, never from 1
/// again. Were it to number lower, its new events would sit below its snapshot and the next recovery would skip them
/// (acknowledged messages lost); were it to reuse a number, the write would fail.
/// <para>
/// First life: every event is followed by a snapshot (Storage:SnapshotEvery 1) and the deletion of what it covers, so
/// the session leaves a snapshot at sequence number S and only a row at S, marked deleted. Second life (a restart): the
/// client resumes and leaves, three QoS 1 messages are queued for it; its rows must be numbered S+1, S+2, ... Third
/// life (another restart): the client resumes and receives the three messages.
/// </para>
/// </summary>
public abstract class ResumeNumberingSpecs : IDisposable
{
    private const string ClientId = "numbering-sub";
    private const string PersistenceId = "session-" + ClientId;
    private const string Topic = "numbering/cmd";

    protected string DataDir { get; } = Path.Combine(Path.GetTempPath(), "broker-numbering-" + Guid.NewGuid().ToString("N"));

    /// <summary>The storage options of every life (one store across the restarts).</summary>
    protected abstract Task<StorageOptions> StorageAsync();

    protected abstract DbConnection Open(StorageOptions storage);

    [Fact]
    public async Task A_session_read_after_a_restart_numbers_its_events_after_the_rows_left_marked_deleted_and_keeps_them_across_another_restart()
    {
        var storage = await StorageAsync();
        Task<BrokerHarness> StartAsync(int snapshotEvery) => StartOnAsync(storage with { SnapshotEvery = snapshotEvery });

        long highest;
        await using (var broker = await StartAsync(snapshotEvery: 1))
        {
            var subscriber = broker.NewClient();
            await subscriber.ConnectAsync(SubscriberOptions(broker));
            await subscriber.SubscribeAsync(Topic, MqttQualityOfServiceLevel.AtLeastOnce);
            await subscriber.DisconnectAsync();
            await WaitDetachedAsync(broker);

            // What the first life leaves: a snapshot at S, and of the journal only its row S, marked deleted; S at least
            // the three events of its CONNECT, SUBSCRIBE and DISCONNECT.
            highest = (await WaitForRowsAsync(storage, r => r.Live == 0 && r.Highest >= 3 && r.SnapshotAt == r.Highest)).Highest;
        }

        Assert.Equal((highest, 0L, highest), await WaitForRowsAsync(storage, _ => true));

        await using (var broker = await StartAsync(snapshotEvery: 1000))
        {
            var subscriber = broker.NewClient();
            var resumed = await subscriber.ConnectAsync(SubscriberOptions(broker));
            Assert.True(resumed.IsSessionPresent);
            await subscriber.DisconnectAsync();

            var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "numbering-pub");
            for (var i = 0; i < 3; i++)
            {
                // Acknowledged only once stored for the offline session.
                var ack = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(Topic).WithPayload($"m{i}")
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                Assert.True(ack.IsSuccess, ack.ReasonString);
            }

            await publisher.DisconnectAsync();
        }

        // The second life's rows: S+1, S+2, ... without a gap, the deleted row S still below them.
        var numbers = await SequenceNumbersAsync(storage, deleted: false);
        Assert.NotEmpty(numbers);
        Assert.Equal(Enumerable.Range(0, numbers.Count).Select(i => highest + 1 + i), numbers);
        Assert.Equal([highest], await SequenceNumbersAsync(storage, deleted: true));

        await using (var broker = await StartAsync(snapshotEvery: 1000))
        {
            var subscriber = broker.NewClient();
            var received = new MessageCollector(subscriber);
            var resumed = await subscriber.ConnectAsync(SubscriberOptions(broker));
            Assert.True(resumed.IsSessionPresent);
            var messages = await received.WaitForAsync(3, TimeSpan.FromSeconds(20));
            Assert.Equal(["m0", "m1", "m2"], messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToArray());
            await subscriber.DisconnectAsync();
        }
    }

    /// <summary>
    /// A topic left with nothing deletes its rows, and the plugin keeps the highest of them, marked deleted (until the
    /// next start purges it). When the topic's entity has stopped and is subscribed to again, this node's directory
    /// knows it has no live rows, so its first new event is written by a journal that starts without replay and only
    /// reads where the numbering stands: it must number after that row.
    /// </summary>
    [Fact]
    public async Task A_topic_emptied_stopped_and_subscribed_to_again_numbers_after_its_deleted_row_and_routes_from_the_new_one()
    {
        const string topic = "numbering/topic";
        const string topicId = "topic-" + topic;
        var storage = await StorageAsync();
        Task<BrokerHarness> StartAsync() => StartOnAsync(storage);

        await using (var broker = await StartAsync())
        {
            // A persistent subscriber is stored in the topic's journal; unsubscribing leaves the topic with nothing.
            var subscriber = broker.NewClient();
            await subscriber.ConnectAsync(SubscriberOptions(broker));
            await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
            await subscriber.UnsubscribeAsync(topic);
            var highest = (await WaitForRowsAsync(storage, r => r.Live == 0 && r.Highest >= 2, topicId)).Highest;
            Assert.Equal([highest], await SequenceNumbersAsync(storage, deleted: true, topicId));

            // The entity stops (as when its shard hands it off), and the next SUBSCRIBE starts it again.
            var entity = await broker.TopicEntity(topic).ResolveOne(TimeSpan.FromSeconds(10));
            Assert.True(await entity.GracefulStop(TimeSpan.FromSeconds(10), TopicHandOff.Instance));
            await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
            await subscriber.DisconnectAsync();

            // The new subscription's row follows the deleted one (a lower number would sit below rows the next
            // recovery skips over, the same number would be refused by the key).
            Assert.Equal([highest + 1], await SequenceNumbersAsync(storage, deleted: false, topicId));

            var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "numbering-topic-pub");
            var ack = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("queued")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            Assert.True(ack.IsSuccess, ack.ReasonString);
            await publisher.DisconnectAsync();
        }

        await using (var broker = await StartAsync())
        {
            // After a restart the topic recovers its subscriber from that row: the queued message arrives, and so
            // does a new one.
            var subscriber = broker.NewClient();
            var received = new MessageCollector(subscriber);
            var resumed = await subscriber.ConnectAsync(SubscriberOptions(broker));
            Assert.True(resumed.IsSessionPresent);
            var messages = await received.WaitForAsync(1, TimeSpan.FromSeconds(20));
            Assert.Equal("queued", Encoding.UTF8.GetString(messages[0].Payload));

            var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "numbering-topic-pub");
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("live")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            messages = await received.WaitForAsync(2, TimeSpan.FromSeconds(20));
            Assert.Equal("live", Encoding.UTF8.GetString(messages[1].Payload));
            await subscriber.DisconnectAsync();
            await publisher.DisconnectAsync();
        }
    }

    /// <summary>A broker on this spec's store; passivated sessions keep nothing in memory, so they read storage again.</summary>
    private Task<BrokerHarness> StartOnAsync(StorageOptions storage) => BrokerHarness.StartAsync(o => o with
    {
        Node = new NodeOptions { DataDir = DataDir },
        Storage = storage,
        Sessions = o.Sessions with { PassivatedStateBytes = 0 },
    });

    private static async Task WaitDetachedAsync(BrokerHarness broker)
    {
        // The session applied the client's departure (its event is on its way to storage).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((await broker.Server.Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo(ClientId), TimeSpan.FromSeconds(10))).Connected)
        {
            Assert.True(DateTime.UtcNow < deadline, "the session still counts its client as connected");
            await Task.Delay(100);
        }
    }

    private static MqttClientOptions SubscriberOptions(BrokerHarness broker) =>
        broker.Options(MqttProtocolVersion.V500, ClientId).WithCleanStart(false).WithSessionExpiryInterval(3600).Build();

    private async Task<(long Highest, long Live, long SnapshotAt)> WaitForRowsAsync(StorageOptions storage, Func<(long Highest, long Live, long SnapshotAt), bool> done,
        string persistenceId = PersistenceId)
    {
        // The snapshot after the last event, and the deletion after it, follow that event's acknowledgement.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            await using var connection = Open(storage);
            await connection.OpenAsync();
            var rows = (await ScalarAsync(connection, "SELECT COALESCE(MAX(sequence_number), 0) FROM journal WHERE persistence_id = @p", persistenceId),
                await ScalarAsync(connection, "SELECT COUNT(*) FROM journal WHERE persistence_id = @p AND deleted = false", persistenceId),
                await ScalarAsync(connection, "SELECT COALESCE(MAX(sequence_number), 0) FROM snapshot WHERE persistence_id = @p", persistenceId));
            if (done(rows))
            {
                return rows;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the first life left highest {rows.Item1}, {rows.Item2} live rows, snapshot at {rows.Item3}");
            await Task.Delay(200);
        }
    }

    private async Task<List<long>> SequenceNumbersAsync(StorageOptions storage, bool deleted, string persistenceId = PersistenceId)
    {
        await using var connection = Open(storage);
        await connection.OpenAsync();
        await using var command = Command(connection,
            $"SELECT sequence_number FROM journal WHERE persistence_id = @p AND deleted = {(deleted ? "true" : "false")} ORDER BY sequence_number",
            persistenceId);
        var numbers = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            numbers.Add(Convert.ToInt64(reader.GetValue(0)));
        }

        return numbers;
    }

    private static async Task<long> ScalarAsync(DbConnection connection, string sql, string persistenceId)
    {
        await using var command = Command(connection, sql, persistenceId);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    private static DbCommand Command(DbConnection connection, string sql, string persistenceId)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@p";
        parameter.Value = persistenceId;
        command.Parameters.Add(parameter);
        return command;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary><see cref="ResumeNumberingSpecs"/> on SQLite.</summary>
public sealed class ResumeNumberingSqliteSpecs : ResumeNumberingSpecs
{
    protected override Task<StorageOptions> StorageAsync() => Task.FromResult(new StorageOptions());

    protected override DbConnection Open(StorageOptions storage) =>
        new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(DataDir, "broker.db"), Pooling = false }.ToString());
}

/// <summary><see cref="ResumeNumberingSpecs"/> on PostgreSQL (a fresh database on the throwaway server).</summary>
[Collection(PostgresCollection.Name)]
public sealed class ResumeNumberingPostgresSpecs(PostgresServer postgres) : ResumeNumberingSpecs
{
    protected override async Task<StorageOptions> StorageAsync() => new()
    {
        Provider = "postgresql",
        ConnectionString = await postgres.CreateDatabaseAsync("numbering_" + Guid.NewGuid().ToString("N")[..8]),
    };

    protected override DbConnection Open(StorageOptions storage) => new NpgsqlConnection(storage.ConnectionString);
}
