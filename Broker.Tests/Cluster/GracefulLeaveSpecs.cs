using System.Text;
using Broker.Tests.Durability;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// A node that stops gracefully closes its clients with v5 reason 0x8B (server shutting down) and hands its shards to
/// the others; a client that reconnects to another node resumes its persistent session and loses nothing.
/// </summary>
public sealed class GracefulLeaveSpecs() : OwnClusterSpecs("leave3")
{
    [Fact]
    public async Task Clients_of_a_leaving_node_get_0x8B_and_resume_their_session_on_another_node_without_loss()
    {
        const string topic = "leave/readings";
        var subscriber = Cluster.NewClient();
        var received = new MessageCollector(subscriber);
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        await subscriber.ConnectAsync(Cluster.Options(3, MqttProtocolVersion.V500, "leaver")
            .WithCleanStart(true).WithSessionExpiryInterval(300).Build());
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        // The publisher is on node 1, but its session entity may live on node 3 (sessions are sharded by client id):
        // a persistent session re-attaches where it recovers without the client noticing. (A clean session would be
        // closed instead: its state lived only in memory on the leaving node.)
        var publisher = Cluster.NewClient();
        await publisher.ConnectAsync(Cluster.Options(1, MqttProtocolVersion.V500, "leave-publisher")
            .WithCleanStart(true).WithSessionExpiryInterval(300).Build());
        async Task PublishAsync(int from, int to)
        {
            for (var i = from; i < to; i++)
            {
                var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload($"m{i}")
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                Assert.True(result.IsSuccess, $"m{i} was not acknowledged: {result.ReasonCode}");
            }
        }

        await PublishAsync(0, 20);
        await received.WaitForAsync(20);

        // Node 3 leaves: its client hears why, so that it reconnects elsewhere.
        await Cluster.StopNodeAsync(3);
        var reason = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MqttClientDisconnectReason.ServerShuttingDown, reason.Reason);

        // Published while the client is away: its session (wherever it went) queues them.
        await PublishAsync(20, 40);

        var resumed = Cluster.NewClient();
        var after = new MessageCollector(resumed);
        var connAck = await resumed.ConnectAsync(Cluster.Options(1, MqttProtocolVersion.V500, "leaver")
            .WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        Assert.True(connAck.IsSessionPresent);
        // Redeliveries (DUP) of earlier messages may come first: wait until the last one published has arrived.
        var expected = Enumerable.Range(20, 20).Select(i => $"m{i}").ToList();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        List<string> payloads;
        while (true)
        {
            payloads = after.Messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToList();
            if (payloads.Contains("m39") || DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.Equal(expected, payloads.Where(p => expected.Contains(p)).Distinct().ToList());
    }
}
