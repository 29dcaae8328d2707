using Akka.Actor;
using Broker.Configuration;
using Broker.Operations;
using Broker.Tests.EndToEnd;
using Microsoft.Data.Sqlite;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Persistence;

/// <summary>
/// A session's recovery only reads, and on SQLite a read must not wait for the file's single writer: otherwise every
/// resume queues behind the journal's writes (and the driver sleeps 150 ms whenever it finds the lock taken).
/// </summary>
public sealed class RecoveryReadsSpecs : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "broker-reads-" + Guid.NewGuid().ToString("N"));

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

    [Fact]
    public async Task A_passivated_session_recovers_from_SQLite_while_another_connection_holds_the_write_lock()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Node = new NodeOptions { DataDir = _dataDir },
            Sessions = o.Sessions with { PassivateAfterSeconds = 1, PassivatedStateBytes = 0 }, // recovered from storage, not from memory
        });
        var client = await broker.ConnectAsync(MqttProtocolVersion.V500, "reads-sub", b => b.WithSessionExpiryInterval(3600));
        await client.SubscribeAsync("reads/+/state", MqttQualityOfServiceLevel.AtLeastOnce);
        await client.DisconnectAsync();
        await StoredSessions.WaitPassivatedAsync(broker.Server, ["reads-sub"], TimeSpan.FromSeconds(20));

        // Another connection takes the write lock and keeps it until the session has answered. The entity wakes from its
        // journal (snapshot, highest sequence number, events) and answers without writing anything.
        await using var writer = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(_dataDir, "broker.db"), Pooling = false,
        }.ToString());
        await writer.OpenAsync();
        await using (var begin = writer.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE;";
            await begin.ExecuteNonQueryAsync();
        }

        try
        {
            // Well below the driver's busy timeout (30 s): a recovery that waited for the lock would not answer.
            var info = await broker.Server.Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo("reads-sub"), TimeSpan.FromSeconds(15));
            Assert.True(info.Exists);
            Assert.True(info.Persistent);
            Assert.False(info.Connected);
            Assert.Contains(info.Subscriptions, s => s.Filter == "reads/+/state" && s.QoS == 1);
        }
        finally
        {
            await using var rollback = writer.CreateCommand();
            rollback.CommandText = "ROLLBACK;";
            await rollback.ExecuteNonQueryAsync();
        }

        // And once the lock is free the client resumes its session as usual.
        var back = broker.NewClient();
        var result = await back.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "reads-sub").WithCleanStart(false)
            .WithSessionExpiryInterval(3600).Build());
        Assert.True(result.IsSessionPresent);
        await back.DisconnectAsync();
    }
}
