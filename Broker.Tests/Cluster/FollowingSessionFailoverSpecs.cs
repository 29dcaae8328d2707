using Akka.Actor;
using Broker.Operations;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// A persistent session that runs beside its client's connection (node 2) while its entity lives on another node
/// (node 3): when node 3 crashes, the live session stops once its writes are stored, the connection attaches again to
/// the entity's next incarnation (which recovers from the journal), and the client, never disconnected, gets every
/// message that was acknowledged to its publisher, before and after the crash.
/// </summary>
public sealed class FollowingSessionFailoverSpecs() : OwnClusterSpecs("followcrash")
{
    private const int Before = 10;
    private const int After = 20;

    [Fact]
    public async Task The_entity_node_of_a_session_beside_its_client_crashes_and_the_client_keeps_its_connection_and_every_message()
    {
        var (id, topic) = await PersistentSessionWithEntityOnAsync(3);
        var subscriber = Cluster.NewClient();
        var received = new MessageCollector(subscriber);
        var disconnects = 0;
        subscriber.DisconnectedAsync += _ =>
        {
            Interlocked.Increment(ref disconnects);
            return Task.CompletedTask;
        };
        var connAck = await subscriber.ConnectAsync(Cluster.Options(2, MqttProtocolVersion.V500, id)
            .WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        Assert.True(connAck.IsSessionPresent);
        var info = await SessionInfoAsync(1, id);
        Assert.StartsWith(AddressOf(2) + "#", info.Node);
        Assert.Equal(AddressOf(3), info.Home);

        var publisher = await Cluster.ConnectAsync(1, id + "-pub");
        await PublishAsync(publisher, topic, 0, Before);
        await received.WaitForAsync(Before, TimeSpan.FromSeconds(10));

        var crashed = AddressOf(3);
        await Cluster.CrashNodeAsync(3);
        await PublishAsync(publisher, topic, Before, Before + After); // each acknowledged: stored by the subscriber's session

        var expected = Enumerable.Range(0, Before + After).Select(n => "m" + n).ToList();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!expected.All(received.Messages.Select(E2E.Text).Contains) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        // Redeliveries (DUP) of messages in flight at the crash may come again: each message's first arrival is in order.
        Assert.Equal(expected, received.Messages.Select(E2E.Text).Distinct().ToList());
        Assert.Equal(0, Volatile.Read(ref disconnects));
        Assert.True(subscriber.IsConnected);

        info = await SessionInfoAsync(1, id);
        Assert.True(info.Connected);
        Assert.NotEqual(crashed, info.Home); // the entity's next incarnation, on a survivor (the session runs there, or
                                             // beside the connection again when nothing was under way as it re-attached)
        Assert.False(info.Node.StartsWith(crashed, StringComparison.Ordinal), info.Node);
    }

    private static async Task PublishAsync(IMqttClient publisher, string topic, int from, int to)
    {
        for (var n = from; n < to; n++)
        {
            var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("m" + n)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            Assert.True(result.IsSuccess, $"m{n} was not acknowledged: {result.ReasonCode}");
        }
    }

    /// <summary>A client id whose session entity lives on <paramref name="node"/>, with a persistent session subscribed at QoS 1, offline.</summary>
    private async Task<(string Id, string Topic)> PersistentSessionWithEntityOnAsync(int node)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var id = E2E.Id($"follow-crash-{attempt}", MqttProtocolVersion.V500);
            var topic = id + "/t";
            var client = Cluster.NewClient();
            await client.ConnectAsync(Cluster.Options(1, MqttProtocolVersion.V500, id).WithCleanStart(true).WithSessionExpiryInterval(300).Build());
            await E2E.SubscribeAsync(client, topic, MqttQualityOfServiceLevel.AtLeastOnce);
            await client.DisconnectAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            SessionInfo info;
            while (!((info = await SessionInfoAsync(1, id)) is { Connected: false } && info.Node == info.Home))
            {
                Assert.True(DateTime.UtcNow < deadline, "the session did not go back to its entity");
                await Task.Delay(50);
            }

            if (info.Home == AddressOf(node))
            {
                return (id, topic);
            }
        }

        throw new InvalidOperationException($"no client id of 30 had its session entity on node {node}");
    }

    private string AddressOf(int node) => Akka.Cluster.Cluster.Get(Cluster.Node(node).System).SelfAddress.ToString();

    private Task<SessionInfo> SessionInfoAsync(int via, string clientId) =>
        Cluster.Node(via).Context.SessionRegion.Ask<SessionInfo>(new GetSessionInfo(clientId), TimeSpan.FromSeconds(10));
}
