using Akka.Actor;
using Broker.Protocol.Packets;
using Broker.Sessions;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using MqttQoS = Broker.Protocol.MqttQoS;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// A clean client's session starts when the client first needs one (Sessions:StartCleanSessionsOnDemand): a client that
/// only publishes at QoS 0 and 1 is held by its connection alone, with no session actor; its first SUBSCRIBE or QoS 2
/// PUBLISH starts the session, and nothing the client sent meanwhile is lost. Takeover, DISCONNECT and a will behave as
/// they do with a session started on connect.
/// </summary>
public sealed class DormantSessionSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly BrokerHarness _broker = fixture.Broker;

    [Fact]
    public async Task Clean_clients_that_only_publish_have_no_session_actor_until_they_subscribe()
    {
        await using var broker = await BrokerHarness.StartAsync();
        const int count = 10;
        var clients = new List<IMqttClient>();
        for (var i = 0; i < count; i++)
        {
            var version = i % 2 == 0 ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500;
            var client = await broker.ConnectAsync(version, $"dormant-{i}");
            await client.PublishAsync($"dormant-{i}/out", "at most once", MqttQualityOfServiceLevel.AtMostOnce);
            await client.PublishAsync($"dormant-{i}/out", "at least once"); // acknowledged: routed without a session
            clients.Add(client);
        }

        Assert.Equal(0, await LiveSessionActorsAsync(broker));

        var received = new List<MessageCollector>();
        for (var i = 0; i < count; i++)
        {
            received.Add(new MessageCollector(clients[i]));
            await clients[i].SubscribeAsync($"dormant-{i}/in"); // SUBACK comes from the session, started for it
        }

        Assert.Equal(count, await LiveSessionActorsAsync(broker));
        var sender = await broker.ConnectAsync(MqttProtocolVersion.V500, "dormant-sender");
        for (var i = 0; i < count; i++)
        {
            await sender.PublishAsync($"dormant-{i}/in", $"to {i}");
        }

        for (var i = 0; i < count; i++)
        {
            Assert.Equal([$"to {i}"], E2E.Texts(await received[i].WaitForAsync(1)));
        }

        Assert.Equal(count, await LiveSessionActorsAsync(broker)); // the sender only publishes: still none for it
    }

    [Fact]
    public async Task With_sessions_started_on_connect_every_clean_client_has_its_session_actor()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Sessions = o.Sessions with { StartCleanSessionsOnDemand = false } });
        for (var i = 0; i < 4; i++)
        {
            await broker.ConnectAsync(MqttProtocolVersion.V500, $"eager-{i}");
        }

        Assert.Equal(4, await LiveSessionActorsAsync(broker));
    }

    [Fact]
    public async Task A_client_whose_connect_carries_a_will_has_its_session_from_the_start()
    {
        await using var broker = await BrokerHarness.StartAsync();
        await broker.ConnectAsync(MqttProtocolVersion.V500, "with-will", o => o.WithWillTopic("with-will/gone").WithWillPayload("gone"));
        await broker.ConnectAsync(MqttProtocolVersion.V500, "without-will");

        Assert.Equal(1, await LiveSessionActorsAsync(broker)); // the session publishes the will if the connection is lost
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_second_connect_takes_a_dormant_client_over_and_the_new_connection_subscribes_and_receives(MqttProtocolVersion version)
    {
        var id = E2E.Id("dormant-takeover", version);
        var first = await _broker.ConnectAsync(version, id);
        var closed = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += e =>
        {
            closed.TrySetResult(e);
            return Task.CompletedTask;
        };

        var second = await _broker.ConnectAsync(version, id);
        var close = await closed.Task.WaitAsync(Wait);
        if (version == MqttProtocolVersion.V500)
        {
            Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, close.Reason);
        }

        var received = new MessageCollector(second);
        await second.SubscribeAsync(id + "/t");
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "after the takeover");
        Assert.Equal(["after the takeover"], E2E.Texts(await received.WaitForAsync(1)));
        Assert.True(second.IsConnected);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_dormant_client_that_disconnects_frees_its_client_id_for_the_next_connect(MqttProtocolVersion version)
    {
        var id = E2E.Id("dormant-leave", version);
        var first = await _broker.ConnectAsync(version, id);
        await first.DisconnectAsync();

        var again = await _broker.ConnectAsync(version, id);
        var received = new MessageCollector(again);
        await again.SubscribeAsync(id + "/t");
        var publisher = await _broker.ConnectAsync(version, id + "-pub");
        await publisher.PublishAsync(id + "/t", "to the next connection");
        Assert.Equal(["to the next connection"], E2E.Texts(await received.WaitForAsync(1)));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Packets_sent_back_to_back_behind_the_packet_that_starts_the_session_are_all_handled_in_order(MqttProtocolVersion version)
    {
        // A raw client sends, without waiting for any answer: SUBSCRIBE (starts its session), then QoS 1 publishes to
        // the topic it just subscribed to, then a QoS 2 publish. Every publish comes back to it, the QoS 1 ones in order.
        var id = E2E.Id("dormant-burst", version);
        var (client, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id);
        await using var _ = client;
        Assert.Equal((byte)0, connAck.ReasonCode); // accepted, in either version
        var topic = id + "/t";
        await client.SendAsync(new MqttSubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new MqttTopicSubscription { TopicFilter = topic, QoS = MqttQoS.ExactlyOnce }],
        });
        for (ushort i = 1; i <= 5; i++)
        {
            await client.SendAsync(new MqttPublishPacket { Topic = topic, QoS = MqttQoS.AtLeastOnce, PacketId = (ushort)(10 + i), Payload = new[] { (byte)i } });
        }

        await client.SendAsync(new MqttPublishPacket { Topic = topic, QoS = MqttQoS.ExactlyOnce, PacketId = 20, Payload = new byte[] { 6 } });

        var deliveries = new List<MqttPublishPacket>();
        var pubAcks = 0;
        var subAcks = 0;
        var pubRecs = 0;
        var deadline = DateTime.UtcNow + Wait;
        while ((deliveries.Count < 6 || pubAcks < 5 || subAcks < 1 || pubRecs < 1) && DateTime.UtcNow < deadline)
        {
            switch (await client.ReceiveAsync(Wait))
            {
                case MqttSubAckPacket:
                    subAcks++;
                    break;
                case MqttPubAckPacket:
                    pubAcks++;
                    break;
                case MqttPubRecPacket rec:
                    pubRecs++;
                    await client.SendAsync(new MqttPubRelPacket { PacketId = rec.PacketId });
                    break;
                case MqttPublishPacket delivery:
                    deliveries.Add(delivery);
                    if (delivery.QoS == MqttQoS.AtLeastOnce)
                    {
                        await client.SendAsync(new MqttPubAckPacket { PacketId = delivery.PacketId });
                    }
                    else if (delivery.QoS == MqttQoS.ExactlyOnce)
                    {
                        await client.SendAsync(new MqttPubRecPacket { PacketId = delivery.PacketId });
                    }

                    break;
                case null:
                    Assert.Fail("the broker closed the connection");
                    break;
            }
        }

        Assert.Equal((1, 5, 1), (subAcks, pubAcks, pubRecs));
        Assert.Equal([1, 2, 3, 4, 5], deliveries.Where(d => d.QoS == MqttQoS.AtLeastOnce).Select(d => (int)d.Payload.Span[0]));
        Assert.Equal([6], deliveries.Where(d => d.QoS == MqttQoS.ExactlyOnce).Select(d => (int)d.Payload.Span[0]));
    }

    /// <summary>
    /// The live sessions running on the node (children of the session host's shelves, "live-N/sINCARNATION"), counted
    /// by asking each to identify itself; every one answers within the window.
    /// </summary>
    private static async Task<int> LiveSessionActorsAsync(BrokerHarness broker)
    {
        var system = broker.Server.System;
        var inbox = Inbox.Create(system);
        system.ActorSelection($"/user/{SessionHost.Name}/live-*/s*").Tell(new Identify(null), inbox.Receiver);
        var count = 0;
        while (true)
        {
            object answer;
            try
            {
                answer = await inbox.ReceiveAsync(TimeSpan.FromSeconds(1));
            }
            catch (TimeoutException)
            {
                return count;
            }

            switch (answer)
            {
                case ActorIdentity { Subject: not null }:
                    count++;
                    break;
                case Status.Failure:
                    return count;
            }
        }
    }
}
