using Broker.Tests.EndToEnd;
using Microsoft.Data.Sqlite;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Broker.Protocol.Packets;
using BrokerQoS = Broker.Protocol.MqttQoS;
using MqttReasonCode = Broker.Protocol.MqttReasonCode;

namespace Broker.Tests.FlowControl;

/// <summary>
/// A session that is slow to confirm is handled by the publisher hold, not by everyone's acknowledgements. A
/// persistent `#`-style subscriber's storage stalls (another process holds SQLite's write lock, as a long checkpoint,
/// a backup or a stuck disk would): the session cannot store what it is sent. A publisher to a topic it matches, which
/// also has a healthy clean subscriber, hears within Sessions:MaxPublisherHold that its QoS 1 and QoS 2 messages were
/// not taken (v5 PUBACK / PUBREC 0x97), while the storage is still stalled: it never waits for Mqtt:DurableAckTimeout
/// (a minute here), and is never acknowledged for a message that was not stored. A 3.1.1 publisher under
/// "backpressure" is closed unacknowledged. Once the storage is back, the same publisher is acknowledged again and the
/// persistent subscriber gets its messages. Real broker, real SQLite, real TCP, MQTTnet clients.
/// </summary>
public sealed class SlowSessionSpecs : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-slowsession-").FullName;

    [Fact]
    public async Task A_session_slow_to_store_should_hold_a_publisher_no_longer_than_the_hold_and_never_be_acknowledged_for()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Node = o.Node with { DataDir = _dataDir },
            Mqtt = o.Mqtt with { DurableAckTimeout = 60 },
            Sessions = o.Sessions with { MaxPublisherHold = 0.5 },
        });
        var (monitor, _, monitored) = await broker.ConnectPersistentAsync(MqttProtocolVersion.V500, "slow-monitor");
        await E2E.SubscribeAsync(monitor, "slow/#");
        var healthy = await broker.ConnectAsync(MqttProtocolVersion.V500, "slow-healthy-sub");
        var received = new MessageCollector(healthy);
        await E2E.SubscribeAsync(healthy, "slow/t");
        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "slow-pub");
        var publisher311 = await broker.ConnectAsync(MqttProtocolVersion.V311, "slow-pub-311");
        var (qos2Publisher, _) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, "slow-pub-qos2");
        await using var _ = qos2Publisher;

        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(publisher, "before", MqttQualityOfServiceLevel.AtLeastOnce)).ReasonCode);
        await monitored.WaitForAsync(1);

        MqttClientPublishResult during;
        MqttPubRecPacket during2;
        using (StallStorage())
        {
            // Each answer must come while the storage is still stalled; the bound on the wait only keeps a failing
            // run short (the answer before this change came after Mqtt:DurableAckTimeout, a minute).
            during = await WithinAsync(PublishAsync(publisher, "during", MqttQualityOfServiceLevel.AtLeastOnce));
            await qos2Publisher.SendAsync(new MqttPublishPacket
            {
                Topic = "slow/t", Payload = "during-qos2"u8.ToArray(), QoS = BrokerQoS.ExactlyOnce, PacketId = 7,
            });
            during2 = await WithinAsync(qos2Publisher.ExpectAsync<MqttPubRecPacket>(TimeSpan.FromSeconds(20)));
            await WithinAsync(Assert.ThrowsAnyAsync<Exception>(() => PublishAsync(publisher311, "during-311", MqttQualityOfServiceLevel.AtLeastOnce)));
            Assert.False(publisher311.IsConnected, "a 3.1.1 publisher has no refusal code: its connection is closed unacknowledged");

            // The healthy subscriber was not made to wait: it has them while the storage is still stalled.
            await received.WaitForAsync(4);
        }

        Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, during.ReasonCode);
        Assert.Equal((7, MqttReasonCode.QuotaExceeded), (during2.PacketId, during2.ReasonCode));
        Assert.True(broker.Server.Context.Metrics.DurableAckTimeouts >= 3, $"{broker.Server.Context.Metrics.DurableAckTimeouts} counted");

        // The storage is back: the publisher is acknowledged again, and the persistent subscriber gets what it stored.
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(publisher, "after", MqttQualityOfServiceLevel.AtLeastOnce)).ReasonCode);
        await monitored.WaitUntilAsync(messages => E2E.Texts(messages).Contains("after"), TimeSpan.FromSeconds(20));
        Assert.Contains("after", E2E.Texts(monitored.Messages));
        await received.WaitForAsync(5);
        Assert.Equal(["after", "before", "during", "during-311", "during-qos2"], E2E.Texts(received.Messages).Distinct().Order());
    }

    private static Task<MqttClientPublishResult> PublishAsync(IMqttClient client, string text, MqttQualityOfServiceLevel qos) =>
        client.PublishAsync(E2E.Message("slow/t", text, qos));

    private static async Task<T> WithinAsync<T>(Task<T> task)
    {
        var first = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.True(first == task, "no answer while the storage was stalled");
        return await task;
    }

    /// <summary>Holds SQLite's write lock on the broker's database (WAL: readers go on, writers wait) until disposed.</summary>
    private IDisposable StallStorage()
    {
        var connection = new SqliteConnection($"Data Source={Path.Combine(_dataDir, "broker.db")};Pooling=False");
        connection.Open();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "PRAGMA busy_timeout = 10000; BEGIN EXCLUSIVE;";
            command.ExecuteNonQuery();
        }

        return new Stall(connection);
    }

    private sealed class Stall(SqliteConnection connection) : IDisposable
    {
        public void Dispose()
        {
            using (var command = connection.CreateCommand())
            {
                command.CommandText = "ROLLBACK;";
                command.ExecuteNonQuery();
            }

            connection.Dispose();
        }
    }

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
}
