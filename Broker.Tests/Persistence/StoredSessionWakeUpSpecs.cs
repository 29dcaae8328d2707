using System.Text;
using Broker.Configuration;
using Broker.Persistence;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Persistence;

/// <summary>
/// A restart loses everything that lives only in memory (DistributedData routes, timers). Stored sessions are woken at
/// start: their wildcard routes come back, and their expiry counts from when the client left, across the restart.
/// </summary>
public sealed class StoredSessionWakeUpSpecs : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "broker-wake-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Task<BrokerHarness> StartAsync() =>
        BrokerHarness.StartAsync(o => o with { Node = new NodeOptions { DataDir = _dataDir } });

    [Fact]
    public async Task A_persistent_wildcard_subscription_routes_again_after_a_restart()
    {
        await using (var broker = await StartAsync())
        {
            var subscriber = broker.NewClient();
            await subscriber.ConnectAsync(broker.Options(MqttProtocolVersion.V311, "wake-wild").WithCleanSession(false).Build());
            await subscriber.SubscribeAsync("wake/+/temp", MqttQualityOfServiceLevel.AtLeastOnce);
            await subscriber.DisconnectAsync();
        }

        await using (var broker = await StartAsync())
        {
            // Published while the subscriber is away: only the restored wildcard route can queue it.
            var publisher = await broker.ConnectAsync(MqttProtocolVersion.V311, "wake-pub");
            var subscriber = broker.NewClient();
            var received = new MessageCollector(subscriber);
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("wake/1/temp").WithPayload("21.5")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            var result = await subscriber.ConnectAsync(broker.Options(MqttProtocolVersion.V311, "wake-wild").WithCleanSession(false).Build());
            Assert.True(result.IsSessionPresent);
            var messages = await received.WaitForAsync(1);
            Assert.Equal("21.5", Encoding.UTF8.GetString(messages[0].Payload));
        }
    }

    [Fact]
    public async Task A_session_that_expired_while_the_broker_was_down_is_gone_and_its_rows_are_purged()
    {
        await using (var broker = await StartAsync())
        {
            var client = broker.NewClient();
            await client.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "wake-expiring").WithCleanStart(false)
                .WithSessionExpiryInterval(2).Build());
            await client.SubscribeAsync("wake/expiring", MqttQualityOfServiceLevel.AtLeastOnce);
            await client.DisconnectAsync();
        }

        await Task.Delay(TimeSpan.FromSeconds(3));
        await using (var broker = await StartAsync())
        {
            // Woken at start, found expired, ended: a reconnect finds no session.
            var janitor = new StorageJanitor(broker.Server.Options);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while ((await janitor.LiveEntityIdsAsync()).Contains("session-wake-expiring") && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            Assert.DoesNotContain("session-wake-expiring", await janitor.LiveEntityIdsAsync());
            var client = broker.NewClient();
            var result = await client.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "wake-expiring").WithCleanStart(false)
                .WithSessionExpiryInterval(0).Build());
            Assert.False(result.IsSessionPresent);
            await client.DisconnectAsync();
        }

        await using (var broker = await StartAsync())
        {
            // Purging (which every start runs in the background) removes what the ended session left in the journal.
            var janitor = new StorageJanitor(broker.Server.Options);
            await janitor.PurgeEndedAsync();
            await using var connection = new Microsoft.Data.Sqlite.SqliteConnection(StorageSetup.ConnectionString(broker.Server.Options));
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = 'session-wake-expiring'";
            Assert.Equal(0L, (long)(await command.ExecuteScalarAsync())!);
        }
    }
}
