using Akka.Actor;
using Akka.Cluster.Sharding;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Microsoft.Data.Sqlite;
using BrokerQoS = Broker.Protocol.MqttQoS;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Persistence;

/// <summary>Test helpers for many stored sessions: creating them over TCP, and looking at what a node holds.</summary>
internal static class StoredSessions
{
    /// <summary>
    /// Creates <paramref name="count"/> persistent sessions through the broker, each with one QoS 1 subscription
    /// (<paramref name="filterOf"/>), then disconnects them: real stored sessions, written by the broker itself.
    /// </summary>
    public static async Task SeedAsync(int port, int count, Func<int, string> clientIdOf, Func<int, string> filterOf,
        uint expirySeconds = 3600, int concurrency = 64)
    {
        var next = -1;
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var client = await RawMqttClient.OpenAsync(port, ClientVersion.V500);
                await using (client)
                {
                    // Generous timeouts: this runs beside other test classes on a busy CI machine.
                    await client.SendAsync(new MqttConnectPacket
                    {
                        ProtocolVersion = client.Version, ClientId = clientIdOf(i), CleanStart = true, SessionExpiryInterval = expirySeconds,
                    });
                    var connAck = await client.ExpectAsync<MqttConnAckPacket>(TimeSpan.FromSeconds(30));
                    Assert.Equal(0, connAck.ReasonCode);
                    await client.SendAsync(new MqttSubscribePacket
                    {
                        PacketId = 1,
                        Subscriptions = [new MqttTopicSubscription { TopicFilter = filterOf(i), QoS = BrokerQoS.AtLeastOnce }],
                    });
                    var subAck = await client.ExpectAsync<MqttSubAckPacket>(TimeSpan.FromSeconds(30));
                    Assert.Equal([Broker.Protocol.MqttReasonCode.GrantedQoS1], subAck.ReasonCodes.ToArray());
                    await client.SendAsync(new MqttDisconnectPacket());
                    await client.ExpectClosedAsync(TimeSpan.FromSeconds(10));
                }
            }
        });
        await Task.WhenAll(workers);
    }

    /// <summary>The client ids whose session entity is in memory on this node now.</summary>
    public static async Task<HashSet<string>> InMemoryAsync(BrokerServer server)
    {
        var state = await server.Context.SessionRegion.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(10));
        return state.Shards.SelectMany(s => s.EntityIds).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Waits until none of <paramref name="clientIds"/> has its entity in memory.</summary>
    public static async Task WaitPassivatedAsync(BrokerServer server, IReadOnlyCollection<string> clientIds, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var inMemory = await InMemoryAsync(server);
            var left = clientIds.Where(inMemory.Contains).ToList();
            if (left.Count == 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{left.Count} sessions still in memory after {timeout.TotalSeconds} s, e.g. {left[0]}");
            await Task.Delay(200);
        }
    }

    /// <summary>Live (not deleted) journal rows of one session in a SQLite store.</summary>
    public static async Task<long> JournalRowsAsync(BrokerServer server, string clientId)
    {
        await using var connection = new SqliteConnection(Broker.Persistence.StorageSetup.ConnectionString(server.Options));
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = @p AND deleted = false";
        command.Parameters.AddWithValue("@p", "session-" + clientId);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
