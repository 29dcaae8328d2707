using Akka.Actor;
using Akka.Cluster.Sharding;
using Broker.Tests.Durability;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// A clean session runs on its connection's node while the registry of its client id's shard (a sharded entity, possibly
/// on another node) holds the client id. When the registry's node leaves, the session keeps running and claims its
/// client id from the registry's next incarnation: its client stays connected and subscribed, and a later CONNECT with
/// the same client id anywhere still takes it over (one connection per client id).
/// </summary>
public sealed class LiveSessionGuardSpecs() : OwnClusterSpecs("guard3")
{
    [Fact]
    public async Task A_clean_session_keeps_its_client_and_its_client_id_when_the_node_of_its_guard_leaves()
    {
        var run = Guid.NewGuid().ToString("N")[..6];

        // Clean clients on node 2 until one has its guard on node 3 (guards are placed by a hash of the client id, their
        // shards on the node with the fewest; a node whose region registered with the coordinator late, as under load,
        // gets none of the first shards, so more clients are connected until one lands there).
        var candidates = new List<(string Id, IMqttClient Client, MessageCollector Received)>();
        (string Id, IMqttClient Client, MessageCollector Received)? guarded = null;
        while (guarded is null && candidates.Count < 120)
        {
            for (var i = 0; i < 12; i++)
            {
                var id = $"guard-{run}-{candidates.Count}";
                var (client, received) = await Cluster.ConnectCollectingAsync(2, id);
                candidates.Add((id, client, received));
            }

            var onNode3 = await LocalShardsAsync(3);
            guarded = candidates.Where(c => onNode3.Contains(Cluster.Node(3).Context.SessionShardOf(c.Id)))
                .Select(c => ((string, IMqttClient, MessageCollector)?)c).FirstOrDefault();
        }

        Assert.True(guarded is not null, $"no guard of {candidates.Count} clean clients landed on node 3");
        var (guardedId, client2, received2) = guarded.Value;
        var topic = $"guard-{run}/t";
        await E2E.SubscribeAsync(client2, topic);
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client2.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };

        await Cluster.StopNodeAsync(3);

        // The client on node 2 was not troubled, and publishes still reach it.
        var publisher = await Cluster.ConnectAsync(1, $"guard-{run}-pub");
        await publisher.PublishAsync(topic, "after the guard moved", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("after the guard moved", E2E.Text((await received2.WaitForAsync(1, TimeSpan.FromSeconds(15)))[0]));
        Assert.True(client2.IsConnected);

        // The guard's new incarnation knows the session: a CONNECT with its client id on node 1 takes it over.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var (client1, received1) = await Cluster.ConnectCollectingAsync(1, guardedId);
        var closed = await disconnected.Task.WaitAsync(deadline - DateTime.UtcNow);
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, closed.Reason);
        Assert.True(client1.IsConnected);
        await E2E.SubscribeAsync(client1, topic);
        await publisher.PublishAsync(topic, "to the new connection", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("to the new connection", E2E.Text((await received1.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
    }

    private async Task<HashSet<string>> LocalShardsAsync(int node)
    {
        var state = await Cluster.Node(node).Context.SessionRegion.Ask<CurrentShardRegionState>(
            GetShardRegionState.Instance, TimeSpan.FromSeconds(10));
        return state.Shards.Select(s => s.ShardId).ToHashSet();
    }
}
