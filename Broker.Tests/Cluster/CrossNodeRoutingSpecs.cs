using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Cluster;

/// <summary>
/// Publishes routed across nodes of a three-node cluster: subscribers on other nodes than the publisher get every
/// message once per subscription and in order per publisher; a shared group spread over two nodes gets each message
/// once; retained messages and fresh wildcard subscriptions are known cluster-wide.
/// </summary>
[Collection(ThreeNodeClusterCollection.Name)]
public sealed class CrossNodeRoutingSpecs(ThreeNodeClusterFixture fixture)
{
    private const int MessagesPerPublisher = 100;
    private readonly ClusterHarness _cluster = fixture.Cluster;

    [Fact]
    public async Task Subscribers_on_other_nodes_get_every_message_once_per_subscription_in_order_per_publisher()
    {
        var id = E2E.Id("route", MqttProtocolVersion.V500);
        var topics = new[] { $"{id}/a", $"{id}/b" };

        var (exact, exactReceived) = await _cluster.ConnectCollectingAsync(2, id + "-exact");
        foreach (var topic in topics)
        {
            await E2E.SubscribeAsync(exact, topic);
        }

        var (wildcard, wildcardReceived) = await _cluster.ConnectCollectingAsync(3, id + "-wild");
        await E2E.SubscribeAsync(wildcard, id + "/+");

        var (shared2, shared2Received) = await _cluster.ConnectCollectingAsync(2, id + "-share2");
        var (shared3, shared3Received) = await _cluster.ConnectCollectingAsync(3, id + "-share3");
        await E2E.SubscribeAsync(shared2, $"$share/g/{id}/+");
        await E2E.SubscribeAsync(shared3, $"$share/g/{id}/+");

        // Two publishers on node 1, one topic each, QoS 1: every PUBACK means the message was routed.
        var publishers = await Task.WhenAll(topics.Select((_, i) => _cluster.ConnectAsync(1, $"{id}-pub{i}")));
        await Task.WhenAll(publishers.Select(async (publisher, i) =>
        {
            for (var n = 0; n < MessagesPerPublisher; n++)
            {
                await publisher.PublishAsync(topics[i], n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }));

        const int total = MessagesPerPublisher * 2;
        var timeout = TimeSpan.FromSeconds(20);
        AssertEveryMessageInOrder(await exactReceived.WaitForAsync(total, timeout), topics, "exact subscriber (node 2)");
        AssertEveryMessageInOrder(await wildcardReceived.WaitForAsync(total, timeout), topics, "wildcard subscriber (node 3)");

        // The shared group: each message exactly once across both members, in order within each member.
        var deadline = DateTime.UtcNow + timeout;
        while (shared2Received.Messages.Count + shared3Received.Messages.Count < total && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await Task.Delay(E2E.Quiet); // duplicates would arrive after the last expected message
        var members = new[] { shared2Received.Messages, shared3Received.Messages };
        var union = members.SelectMany(m => m).Select(m => (m.Topic, E2E.Text(m))).ToList();
        Assert.Equal(total, union.Count);
        Assert.Equal(total, union.Distinct().Count());
        foreach (var member in members)
        {
            foreach (var topic in topics)
            {
                var seq = member.Where(m => m.Topic == topic).Select(m => int.Parse(E2E.Text(m), System.Globalization.CultureInfo.InvariantCulture)).ToList();
                Assert.Equal(seq.Order().ToList(), seq);
            }
        }

        await exactReceived.AssertNoMoreAsync(total, TimeSpan.Zero);
        await wildcardReceived.AssertNoMoreAsync(total, TimeSpan.Zero);
    }

    [Fact]
    public async Task Retained_message_set_on_node_1_is_delivered_on_subscribe_at_node_3_exact_and_wildcard()
    {
        var id = E2E.Id("retained", MqttProtocolVersion.V500);
        var publisher = await _cluster.ConnectAsync(1, id + "-pub");
        await publisher.PublishAsync(id + "/state", "on", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);

        // Right after the PUBACK: the retained message was stored, so any node must know it.
        var (exact, exactReceived) = await _cluster.ConnectCollectingAsync(3, id + "-exact");
        await E2E.SubscribeAsync(exact, id + "/state");
        var (wildcard, wildcardReceived) = await _cluster.ConnectCollectingAsync(3, id + "-wild");
        await E2E.SubscribeAsync(wildcard, id + "/#");

        foreach (var (received, who) in new[] { (exactReceived, "exact"), (wildcardReceived, "wildcard") })
        {
            var message = (await received.WaitForAsync(1, TimeSpan.FromSeconds(5)))[0];
            Assert.True(message.Retain, who + ": retain flag");
            Assert.Equal(id + "/state", message.Topic);
            Assert.Equal("on", E2E.Text(message));
        }

        await exactReceived.AssertNoMoreAsync(1, E2E.Quiet);
        Assert.Single(wildcardReceived.Messages);
    }

    [Fact]
    public async Task Wildcard_subscription_made_on_node_2_routes_a_publish_on_node_3_sent_right_after_SUBACK()
    {
        var id = E2E.Id("wild-now", MqttProtocolVersion.V500);
        var publisher = await _cluster.ConnectAsync(3, id + "-pub");
        var (subscriber, received) = await _cluster.ConnectCollectingAsync(2, id + "-sub");

        // Several rounds: a race between SUBACK and the route reaching node 3 would show in one of them.
        const int rounds = 5;
        for (var round = 0; round < rounds; round++)
        {
            await E2E.SubscribeAsync(subscriber, $"{id}/{round}/#");
            await publisher.PublishAsync($"{id}/{round}/x/y", round.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var messages = await received.WaitForAsync(rounds, TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(0, rounds).Select(r => r.ToString(System.Globalization.CultureInfo.InvariantCulture)), E2E.Texts(messages));
    }

    [Fact]
    public async Task A_1_MiB_payload_crosses_nodes_intact_to_an_exact_and_a_wildcard_subscriber()
    {
        // Akka remoting drops frames above its maximum-frame-size (128,000 bytes by default): the broker raises it
        // with Mqtt:MaxPacketSize, so a large publish reaches subscribers on other nodes too.
        var id = E2E.Id("large-route", MqttProtocolVersion.V500);
        var (exact, exactReceived) = await _cluster.ConnectCollectingAsync(2, id + "-exact");
        await E2E.SubscribeAsync(exact, id + "/image");
        var (wildcard, wildcardReceived) = await _cluster.ConnectCollectingAsync(3, id + "-wild");
        await E2E.SubscribeAsync(wildcard, id + "/+");

        var payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(1 << 20);
        var publisher = await _cluster.ConnectAsync(1, id + "-pub");
        var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(id + "/image").WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.True(result.IsSuccess, $"PUBACK {result.ReasonCode}");

        foreach (var received in new[] { exactReceived, wildcardReceived })
        {
            var message = Assert.Single(await received.WaitForAsync(1, TimeSpan.FromSeconds(20)));
            Assert.True(payload.AsSpan().SequenceEqual(System.Buffers.BuffersExtensions.ToArray(message.Payload)), "payload differs");
        }
    }

    private static void AssertEveryMessageInOrder(IReadOnlyList<MqttApplicationMessage> messages, string[] topics, string who)
    {
        Assert.True(messages.Count == MessagesPerPublisher * topics.Length, $"{who}: {messages.Count} messages");
        foreach (var topic in topics)
        {
            var seq = messages.Where(m => m.Topic == topic).Select(E2E.Text).ToList();
            Assert.Equal(Enumerable.Range(0, MessagesPerPublisher).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), seq);
        }
    }
}
