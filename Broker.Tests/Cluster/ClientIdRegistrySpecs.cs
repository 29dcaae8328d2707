using Akka.Actor;
using Broker.Operations;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// Every CONNECT passes through the registry of its client id's shard, which holds the id of a clean session itself
/// and hands everything else to the id's session entity. Across three nodes, clean and persistent connections of one
/// client id take each other over, a clean connect discards a stored session, and the id is held once.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class ClientIdRegistrySpecs(ThreeNodeClusterFixture fixture)
{
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task A_persistent_connect_on_another_node_takes_over_a_clean_session_and_keeps_what_is_queued_for_it()
    {
        var id = E2E.Id("reg-clean-then-persistent", MqttProtocolVersion.V500);
        var topic = id + "/t";
        var (clean, _) = await _cluster.ConnectCollectingAsync(1, id);
        var closed = ClosedReason(clean);

        var persistent = await ConnectPersistentAsync(2, id);
        Assert.False(persistent.Result.IsSessionPresent); // the clean session stored nothing
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, await closed.WaitAsync(TimeSpan.FromSeconds(10)));
        await E2E.SubscribeAsync(persistent.Client, topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await persistent.Client.DisconnectAsync();

        var publisher = await _cluster.ConnectAsync(3, id + "-pub");
        await publisher.PublishAsync(topic, "queued while away", MqttQualityOfServiceLevel.AtLeastOnce);

        var back = await ConnectPersistentAsync(3, id);
        Assert.True(back.Result.IsSessionPresent);
        Assert.Equal("queued while away", E2E.Text((await back.Received.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
    }

    [Fact]
    public async Task A_clean_connect_discards_a_stored_session_and_holds_the_id_until_a_later_connect_takes_it_over()
    {
        var id = E2E.Id("reg-persistent-then-clean", MqttProtocolVersion.V500);
        var topic = id + "/t";
        var persistent = await ConnectPersistentAsync(1, id);
        await E2E.SubscribeAsync(persistent.Client, topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await persistent.Client.DisconnectAsync();
        var publisher = await _cluster.ConnectAsync(2, id + "-pub");
        await publisher.PublishAsync(topic, "stored for the persistent session", MqttQualityOfServiceLevel.AtLeastOnce);

        // Clean Start on node 3: the stored session and its queued message are gone [MQTT-3.1.2-4].
        var (clean, received) = await _cluster.ConnectCollectingAsync(3, id);
        var closed = ClosedReason(clean);
        await received.AssertNoMoreAsync(0, E2E.Quiet);
        var info = await SessionInfoAsync(id);
        Assert.True(info.Connected);
        Assert.False(info.Persistent);
        Assert.Empty(info.Subscriptions);

        // The id is held once: a clean connect on node 2 takes it over, and the new session starts empty too.
        var (again, receivedAgain) = await _cluster.ConnectCollectingAsync(2, id);
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, await closed.WaitAsync(TimeSpan.FromSeconds(10)));
        await E2E.SubscribeAsync(again, topic);
        await publisher.PublishAsync(topic, "to the clean session", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("to the clean session", E2E.Text((await receivedAgain.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
        await receivedAgain.AssertNoMoreAsync(1, E2E.Quiet);
        await again.DisconnectAsync();

        // Nothing of the stored session came back.
        var resumed = await ConnectPersistentAsync(1, id);
        Assert.False(resumed.Result.IsSessionPresent);
        await resumed.Received.AssertNoMoreAsync(0, E2E.Quiet);
    }

    [Fact]
    public async Task Many_clean_clients_of_one_id_connecting_at_once_on_three_nodes_leave_exactly_one_connected()
    {
        var id = E2E.Id("reg-race", MqttProtocolVersion.V500);
        var clients = Enumerable.Range(0, 9).Select(_ => _cluster.NewClient()).ToList();
        var connects = clients.Select((c, i) => c.ConnectAsync(_cluster.Options(1 + (i % 3), MqttProtocolVersion.V500, id)
            .WithCleanStart(true).Build()));
        await Task.WhenAll(connects.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        // Every CONNECT was answered; each took the id over from the one before it, so one is left.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (clients.Count(c => c.IsConnected) > 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.Equal(1, clients.Count(c => c.IsConnected));
        var info = await SessionInfoAsync(id);
        Assert.True(info.Connected);
        var survivor = clients.Single(c => c.IsConnected);
        var topic = id + "/t";
        await E2E.SubscribeAsync(survivor, topic);
        var received = new MessageCollector(survivor);
        var publisher = await _cluster.ConnectAsync(2, id + "-pub");
        await publisher.PublishAsync(topic, "to the one left", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("to the one left", E2E.Text((await received.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
    }

    private async Task<(IMqttClient Client, MqttClientConnectResult Result, MessageCollector Received)> ConnectPersistentAsync(int node, string id)
    {
        var client = _cluster.NewClient();
        var received = new MessageCollector(client);
        var result = await client.ConnectAsync(_cluster.Options(node, MqttProtocolVersion.V500, id)
            .WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        return (client, result, received);
    }

    private static Task<MqttClientDisconnectReason> ClosedReason(IMqttClient client)
    {
        var closed = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            closed.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };
        return closed.Task;
    }

    private Task<SessionInfo> SessionInfoAsync(string clientId) =>
        _cluster.Node(2).Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo(clientId), TimeSpan.FromSeconds(10));
}
