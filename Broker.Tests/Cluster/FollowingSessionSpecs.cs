using Akka.Actor;
using Broker.Operations;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// A persistent session runs on the node of its client's connection while the client is connected, and goes back to
/// its entity (sharded by client id) when the client leaves: where the management API says the session lives, and
/// that nothing queued or in flight is lost as it moves there, back, and on to a third node with a takeover.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class FollowingSessionSpecs(ThreeNodeClusterFixture fixture)
{
    private const int Window = 4; // the client's Receive Maximum: what stays in flight unacknowledged
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task A_session_follows_its_client_to_node_2_with_its_queued_messages_and_moves_to_node_3_with_a_takeover()
    {
        var (id, topic) = await PersistentSessionWithEntityOnNode1Async("follow");
        var publisher = await _cluster.ConnectAsync(1, id + "-pub");
        for (var n = 0; n < 5; n++)
        {
            await publisher.PublishAsync(topic, "offline " + n, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        // Node 2: the session comes with its five queued messages and lives there while connected. The client
        // acknowledges nothing, so with a window of 4 the rest stays queued.
        var second = _cluster.NewClient();
        var secondSeen = new List<string>();
        second.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            lock (secondSeen)
            {
                secondSeen.Add(e.ApplicationMessage.ConvertPayloadToString());
            }

            return Task.CompletedTask;
        };
        var taken = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        second.DisconnectedAsync += e =>
        {
            taken.TrySetResult(e);
            return Task.CompletedTask;
        };
        var resumed = await second.ConnectAsync(PersistentOptions(2, id).WithReceiveMaximum(Window).Build());
        Assert.True(resumed.IsSessionPresent);
        await WaitUntilAsync(() => Count(secondSeen) >= Window, "node 2's client to get the first messages");

        var info = await SessionInfoAsync(id);
        Assert.True(info.Connected);
        Assert.StartsWith(AddressOf(2) + "#", info.Node); // a live session there, not an entity
        Assert.Equal(AddressOf(1), info.Home);
        Assert.Equal([topic], info.Subscriptions.Select(s => s.Filter));

        for (var n = 0; n < 3; n++)
        {
            await publisher.PublishAsync(topic, "on node 2 " + n, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        await Task.Delay(E2E.Quiet);
        Assert.Equal(["offline 0", "offline 1", "offline 2", "offline 3"], Snapshot(secondSeen));

        // Node 3 takes the session over: node 2's client hears 0x8E; the session moves to node 3 with what was in flight
        // (sent again) and what was queued, in order.
        var third = _cluster.NewClient();
        var received = new MessageCollector(third);
        var again = await third.ConnectAsync(PersistentOptions(3, id).Build());
        Assert.True(again.IsSessionPresent);
        Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, (await taken.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);

        string[] expected = ["offline 0", "offline 1", "offline 2", "offline 3", "offline 4", "on node 2 0", "on node 2 1", "on node 2 2"];
        var messages = await received.WaitForAsync(expected.Length, TimeSpan.FromSeconds(15));
        Assert.Equal(expected, E2E.Texts(messages));

        info = await SessionInfoAsync(id);
        Assert.True(info.Connected);
        Assert.StartsWith(AddressOf(3) + "#", info.Node);
        Assert.Equal(AddressOf(1), info.Home);

        // The subscription made on node 1 keeps routing to the session, now on node 3.
        await publisher.PublishAsync(topic, "on node 3", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("on node 3", E2E.Text((await received.WaitForAsync(expected.Length + 1, TimeSpan.FromSeconds(10)))[^1]));
        await received.AssertNoMoreAsync(expected.Length + 1, E2E.Quiet);
    }

    [Fact]
    public async Task A_session_goes_back_to_its_entity_when_its_client_leaves_and_stores_what_arrives_meanwhile()
    {
        var (id, topic) = await PersistentSessionWithEntityOnNode1Async("follow-back");
        var publisher = await _cluster.ConnectAsync(3, id + "-pub");

        for (var round = 0; round < 2; round++)
        {
            var node = 2 + round; // node 2, then node 3: away from the entity each time
            var client = _cluster.NewClient();
            var received = new MessageCollector(client);
            await client.ConnectAsync(PersistentOptions(node, id).Build());
            var info = await SessionInfoAsync(id);
            Assert.StartsWith(AddressOf(node) + "#", info.Node);

            await publisher.PublishAsync(topic, $"live {round}", MqttQualityOfServiceLevel.AtLeastOnce);
            Assert.Equal($"live {round}", E2E.Text((await received.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
            // Its PUBACK reached the session (otherwise the message would rightly come again on the next connection).
            await WaitUntilAsync(async () => (await SessionInfoAsync(id)).Inflight == 0, "the PUBACK to be taken");
            await client.DisconnectAsync();

            // Back with its entity on node 1, offline: what is published now is stored there.
            await WaitUntilAsync(async () => (await SessionInfoAsync(id)) is { Connected: false } s && AtEntityOn(s, 1),
                "the session to be back on node 1");
            await publisher.PublishAsync(topic, $"offline {round}", MqttQualityOfServiceLevel.AtLeastOnce);
            info = await SessionInfoAsync(id);
            Assert.Equal(1, info.Queued);

            var back = _cluster.NewClient();
            var backReceived = new MessageCollector(back);
            var resumed = await back.ConnectAsync(PersistentOptions(1, id).Build());
            Assert.True(resumed.IsSessionPresent);
            Assert.Equal($"offline {round}", E2E.Text((await backReceived.WaitForAsync(1, TimeSpan.FromSeconds(10)))[0]));
            await backReceived.AssertNoMoreAsync(1, E2E.Quiet);
            await back.DisconnectAsync();
        }
    }

    /// <summary>
    /// A client id whose session entity lives on node 1 (tried until one lands there), with a persistent session that
    /// subscribed to its topic at QoS 1 and is offline.
    /// </summary>
    private async Task<(string Id, string Topic)> PersistentSessionWithEntityOnNode1Async(string prefix)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var id = E2E.Id($"{prefix}-{attempt}", MqttProtocolVersion.V500);
            var topic = id + "/t";
            var client = _cluster.NewClient();
            await client.ConnectAsync(_cluster.Options(1, MqttProtocolVersion.V500, id).WithCleanStart(true).WithSessionExpiryInterval(300).Build());
            await E2E.SubscribeAsync(client, topic, MqttQualityOfServiceLevel.AtLeastOnce);
            await client.DisconnectAsync();
            SessionInfo? info = null;
            await WaitUntilAsync(async () => (info = await SessionInfoAsync(id)) is { Connected: false }, "the session to be offline");
            if (AtEntityOn(info!, 1))
            {
                return (id, topic);
            }
        }

        throw new InvalidOperationException("no client id of 30 had its session entity on node 1");
    }

    private MqttClientOptionsBuilder PersistentOptions(int node, string id) =>
        _cluster.Options(node, MqttProtocolVersion.V500, id).WithCleanStart(false).WithSessionExpiryInterval(300);

    /// <summary>The session is held by its entity, on node <paramref name="node"/> (not by a live session: those name the node's incarnation too).</summary>
    private bool AtEntityOn(SessionInfo info, int node) => info.Node == AddressOf(node) && info.Home == AddressOf(node);

    private string AddressOf(int node) => Akka.Cluster.Cluster.Get(_cluster.Node(node).System).SelfAddress.ToString();

    private Task<SessionInfo> SessionInfoAsync(string clientId) =>
        _cluster.Node(1).Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo(clientId), TimeSpan.FromSeconds(10));

    private static int Count(List<string> seen)
    {
        lock (seen)
        {
            return seen.Count;
        }
    }

    private static string[] Snapshot(List<string> seen)
    {
        lock (seen)
        {
            return seen.ToArray();
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("waited in vain for " + what);
            }

            await Task.Delay(50);
        }
    }
}
