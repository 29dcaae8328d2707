using Broker.Tests.Durability;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Npgsql;

namespace Broker.Tests.Cluster;

/// <summary>
/// A topic entity whose shard is handed to another node handles, before it stops, what it was sent and had to put
/// aside while it was not ready (starting, recovering, waiting for its retained topic to be indexed). Here: a
/// wildcard subscriber's request for a retained message reaches the topic while it waits for the stored index of
/// retained topics (held by a table lock), and the topic's node leaves at that moment. The request must still be
/// answered: nobody asks again, so a request dropped at the hand-off is a retained message the subscriber never gets.
/// </summary>
public sealed class RetainedHandOffSpecs : IAsyncLifetime
{
    private readonly PostgresServer _postgres = new();
    private ClusterHarness _cluster = null!;
    private string _connectionString = "";

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _connectionString = await _postgres.CreateDatabaseAsync("retainedhandoff");
        _cluster = await ClusterHarness.StartAsync(_connectionString, count: 2);
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _cluster.DisposeAsync();
        }
        finally
        {
            await _postgres.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_retained_request_set_aside_by_a_topic_is_answered_when_its_shard_is_handed_off()
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var topic = $"rh/{run}/a";

        // The retained-topic index is kept in storage too; holding its table makes the topic's first retained message
        // wait (stashing what arrives) until the row is written.
        await using var lockHolder = new NpgsqlConnection(_connectionString + ";Pooling=false");
        await lockHolder.OpenAsync();
        await using var locking = await lockHolder.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE broker_retained_topic IN ACCESS EXCLUSIVE MODE", lockHolder, locking))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        // Published on node 2: the topic's shard is placed there (first use). Its acknowledgement waits for the index.
        var publisher = await _cluster.ConnectAsync(2, $"rh-pub-{run}");
        var publishing = publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("retained-a")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag().Build());
        await WaitForBlockedIndexWriteAsync();

        // A wildcard subscriber on node 1: node 1's replica already knows the topic, so the request goes to the topic
        // entity on node 2, which puts it aside.
        var (subscriber, received) = await _cluster.ConnectCollectingAsync(1, $"rh-sub-{run}");
        await subscriber.SubscribeAsync($"rh/{run}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await Task.Delay(500); // the request's way to node 2 (a message between two processes on this machine)

        // Node 2 leaves: its shards are handed off. The index stays held until node 2 has stopped, or 5 s (within the
        // hand-off timeout of 10 s): an entity that is stopped at once loses the request, one that waits answers it.
        var stopping = _cluster.StopNodeAsync(2);
        await Task.WhenAny(stopping, Task.Delay(TimeSpan.FromSeconds(5)));
        await locking.CommitAsync();
        await stopping;
        _ = publishing.ContinueWith(t => t.Exception, TaskScheduler.Default); // ended by the node's stop either way

        var retained = await received.WaitUntilAsync(m => m.Any(x => x.Retain && x.Topic == topic), TimeSpan.FromSeconds(20));
        Assert.Equal("retained-a", retained.First(x => x.Retain && x.Topic == topic).ConvertPayloadToString());
    }

    private async Task WaitForBlockedIndexWriteAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString + ";Pooling=false");
        await connection.OpenAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%broker_retained_topic%'", connection);
            if ((long)(await command.ExecuteScalarAsync())! > 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "the retained index write did not reach the held table");
            await Task.Delay(50);
        }
    }
}
