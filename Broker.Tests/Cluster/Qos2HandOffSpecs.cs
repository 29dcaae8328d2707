using System.Text;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Sessions;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>
/// QoS 2 stays exactly once when the publisher's session entity is handed off while it routes (MQTT-4.3.3). On one
/// node, the publisher's session gets the shard region's hand-off stop message (<see cref="SessionHandOff"/>, what a
/// leaving node's shard sends each entity) right after a burst of QoS 2 publishes: the entity stops with some of them
/// stored for the subscriber and not yet answered with PUBREC; the connection re-attaches to the recovered session and
/// hands them over again. Every message must reach the subscriber once, in order, and every publish must complete.
/// </summary>
public sealed class Qos2HandOffSpecs : IAsyncLifetime
{
    private const string Topic = "handoff/q2";
    private const int Burst = 40;
    private readonly ITestOutputHelper _output;
    private BrokerHarness _broker = null!;

    public Qos2HandOffSpecs(ITestOutputHelper output) => _output = output;

    public async Task InitializeAsync() => _broker = await BrokerHarness.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Theory]
    [InlineData(ClientVersion.V500)]
    [InlineData(ClientVersion.V311)]
    public async Task A_QoS_2_message_routed_again_after_its_publishers_session_moved_reaches_each_subscriber_once(ClientVersion version)
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var (subscriber, _) = await RawMqttClient.ConnectAsync(_broker.Port, ClientVersion.V500, $"q2-sub-{run}",
            c => c with { SessionExpiryInterval = 300 });
        await using var _sub = subscriber;
        await subscriber.SubscribeAsync(1, Topic, MqttQoS.ExactlyOnce);
        var taken = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = Task.Run(() => ReceiveQos2Async(subscriber, taken, stop.Token));

        var publisherId = $"q2-pub-{run}";
        var (publisher, _) = await RawMqttClient.ConnectAsync(_broker.Port, version, publisherId,
            c => c with { CleanStart = false, SessionExpiryInterval = version == ClientVersion.V500 ? 300u : 0u });
        await using var _pub = publisher;
        var session = _broker.SessionEntity(publisherId);
        var metrics = _broker.Server.Context.Metrics;
        var suppressedBefore = metrics.Qos2DuplicatesSuppressed;

        // Bursts with a hand-off right behind each, until the case has happened (a message routed again that the
        // subscriber had taken) a few times; bounded.
        var published = 0;
        var bursts = 0;
        while (bursts < 40 && (bursts < 4 || metrics.Qos2DuplicatesSuppressed - suppressedBefore < 3))
        {
            var frames = new List<byte>();
            for (var i = 0; i < Burst; i++)
            {
                frames.AddRange(Broker.Protocol.Codec.MqttPacketEncoder.Encode(new MqttPublishPacket
                {
                    Topic = Topic, QoS = MqttQoS.ExactlyOnce, PacketId = (ushort)(published + i + 1), // ids not reused: no stale answer counts
                    Payload = Encoding.UTF8.GetBytes($"m{published + i}"),
                }, publisher.Version));
            }

            await publisher.SendRawAsync(frames.ToArray());
            await Task.Delay(bursts % 5);
            session.Tell(SessionHandOff.Instance);
            await CompleteAsync(publisher, published + 1, Burst);
            published += Burst;
            bursts++;
        }

        // Everything published was acknowledged (PUBREC, then PUBCOMP): it must all arrive, each once, in order.
        var expected = Enumerable.Range(0, published).Select(i => $"m{i}").ToList();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Count(taken) < published && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        await Task.Delay(E2E.Quiet); // a duplicate would come right behind
        await stop.CancelAsync();
        await receiving;

        var suppressed = metrics.Qos2DuplicatesSuppressed - suppressedBefore;
        _output.WriteLine($"{bursts} bursts of {Burst} with a hand-off behind each: {published} published, {taken.Count} taken, {suppressed} second routings recognised");
        List<string> got;
        lock (taken)
        {
            got = taken.ToList();
        }

        var twice = got.GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"taken more than once: {string.Join(", ", twice.Take(20))}");
        var firstOff = Enumerable.Range(0, Math.Min(expected.Count, got.Count)).FirstOrDefault(i => expected[i] != got[i], -1);
        Assert.True(firstOff < 0 && got.Count == expected.Count,
            $"not each once in order: from #{firstOff} got {string.Join(",", got.Skip(Math.Max(0, firstOff - 3)).Take(20))}");
        Assert.True(suppressed > 0, "no message was routed a second time: the hand-off never met a message mid-routing");
    }

    [Fact]
    public async Task Subscribes_and_unsubscribes_sent_as_the_session_is_handed_off_are_answered_and_take_effect()
    {
        var clientId = $"handoff-sub-{Guid.NewGuid().ToString("N")[..6]}";
        var (client, _) = await RawMqttClient.ConnectAsync(_broker.Port, ClientVersion.V500, clientId,
            c => c with { SessionExpiryInterval = 300 });
        await using var _c = client;
        var session = _broker.SessionEntity(clientId);

        // Each round: SUBSCRIBE a new filter and UNSUBSCRIBE the previous one back to back, the hand-off right behind
        // them; both must be answered (a request the stopping session never read used to go unanswered for ever).
        const int rounds = 20;
        for (var i = 1; i <= rounds; i++)
        {
            await client.SendAsync(new MqttSubscribePacket
            {
                PacketId = (ushort)(2 * i), Subscriptions = [new MqttTopicSubscription { TopicFilter = $"handoff/sub/{i}", QoS = MqttQoS.AtLeastOnce }],
            });
            if (i > 1)
            {
                await client.SendAsync(new MqttUnsubscribePacket { PacketId = (ushort)(2 * i + 1), TopicFilters = [$"handoff/sub/{i - 1}"] });
            }

            await Task.Delay(i % 3);
            session.Tell(SessionHandOff.Instance);
            // The two answers may come in either order (SUBACK waits for the routes to be registered).
            var answers = new List<MqttPacket>();
            while (answers.Count < (i > 1 ? 2 : 1))
            {
                answers.Add(await client.ReceiveAsync(TimeSpan.FromSeconds(15))
                    ?? throw new InvalidOperationException($"round {i}: the broker closed the connection"));
            }

            var subAck = Assert.Single(answers.OfType<MqttSubAckPacket>());
            Assert.Equal((ushort)(2 * i), subAck.PacketId);
            Assert.Equal(MqttReasonCode.GrantedQoS1, subAck.ReasonCodes.Single());
            if (i > 1)
            {
                Assert.Equal((ushort)(2 * i + 1), Assert.Single(answers.OfType<MqttUnsubAckPacket>()).PacketId);
            }
        }

        // Only the last filter is left: a message on it arrives, one on the one before does not. QoS 1: the connection may
        // still be re-attaching to the session after the last hand-off, and QoS 0 may be dropped meanwhile.
        var (publisher, _) = await RawMqttClient.ConnectAsync(_broker.Port, ClientVersion.V500, $"{clientId}-pub");
        await using var _p = publisher;
        await publisher.SendAsync(new MqttPublishPacket { Topic = $"handoff/sub/{rounds - 1}", QoS = MqttQoS.AtLeastOnce, PacketId = 1, Payload = "old"u8.ToArray() });
        await publisher.SendAsync(new MqttPublishPacket { Topic = $"handoff/sub/{rounds}", QoS = MqttQoS.AtLeastOnce, PacketId = 2, Payload = "new"u8.ToArray() });
        var got = await client.ExpectAsync<MqttPublishPacket>(TimeSpan.FromSeconds(15));
        Assert.Equal($"handoff/sub/{rounds}", got.Topic);
        await client.AssertSilentAsync(E2E.Quiet);
    }

    private static int Count(List<string> taken)
    {
        lock (taken)
        {
            return taken.Count;
        }
    }

    /// <summary>The publisher's side: PUBREL for each PUBREC, until PUBCOMP came for ids first .. first + count - 1.</summary>
    private static async Task CompleteAsync(RawMqttClient publisher, int first, int count)
    {
        var completed = new HashSet<ushort>();
        while (completed.Count < count)
        {
            switch (await publisher.ReceiveAsync(TimeSpan.FromSeconds(30)))
            {
                case MqttPubRecPacket rec:
                    Assert.True((byte)rec.ReasonCode < 0x80, $"PUBREC {rec.PacketId} refused: {rec.ReasonCode}");
                    await publisher.SendAsync(new MqttPubRelPacket { PacketId = rec.PacketId });
                    break;
                case MqttPubCompPacket comp when comp.PacketId >= first && comp.PacketId < first + count:
                    completed.Add(comp.PacketId);
                    break;
                case null:
                    throw new InvalidOperationException("the broker closed the publisher's connection");
            }
        }
    }

    /// <summary>
    /// A QoS 2 receiver (method B, MQTT-4.3.3): a PUBLISH is taken when its packet id is not awaiting PUBREL; a
    /// resend of one awaiting PUBREL is the same message.
    /// </summary>
    private static async Task ReceiveQos2Async(RawMqttClient subscriber, List<string> taken, CancellationToken stop)
    {
        var awaitingRel = new HashSet<ushort>();
        while (!stop.IsCancellationRequested)
        {
            MqttPacket? packet;
            try
            {
                packet = await subscriber.ReceiveAsync(TimeSpan.FromMilliseconds(250));
            }
            catch (TimeoutException)
            {
                continue;
            }

            switch (packet)
            {
                case MqttPublishPacket p:
                    if (awaitingRel.Add(p.PacketId))
                    {
                        lock (taken)
                        {
                            taken.Add(Encoding.UTF8.GetString(p.Payload.Span));
                        }
                    }

                    await subscriber.SendAsync(new MqttPubRecPacket { PacketId = p.PacketId });
                    break;
                case MqttPubRelPacket rel:
                    awaitingRel.Remove(rel.PacketId);
                    await subscriber.SendAsync(new MqttPubCompPacket { PacketId = rel.PacketId });
                    break;
                case null:
                    return;
            }
        }
    }
}
