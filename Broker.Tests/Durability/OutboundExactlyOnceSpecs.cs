using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// A session's sends are not journaled: a message's packet id derives from its position in the session, and after a
/// crash every message not completed goes again under that id. This spec holds the broker to it where it matters
/// most, a connected QoS 2 subscriber: a flood of QoS 2 messages runs into a persistent session whose client reads
/// and acknowledges as it goes, and the node is killed (-9) mid-flood, with messages of that session at every stage
/// (sent and unread, PUBREC on its way, PUBREL sent, PUBCOMP on its way). The subscriber is a client that keeps its
/// own session state as MQTT requires (the ids it answered with PUBREC and has not seen PUBREL for: a PUBLISH under
/// such an id is the same message again, not delivered twice [MQTT-4.3.3-9]). The publisher's session is persistent
/// too, and its client resumes after the restart as MQTT requires (PUBLISH with DUP for what had no PUBREC, PUBREL for
/// what had), so its own pending messages are recovered, routed again and released. After the restart both reconnect
/// with their state: every message the publisher sent reaches the subscriber exactly once and in order. A message
/// resent under another id would arrive twice; a new message under an id the client still holds would be lost.
/// </summary>
public sealed class OutboundExactlyOnceSpecs(ITestOutputHelper output) : IDisposable
{
    private const int Max = 20_000;
    private readonly NodeProcesses _nodes = new("broker-qos2-out-");

    [Theory]
    [InlineData(ClientVersion.V500)]
    [InlineData(ClientVersion.V311)]
    public async Task A_connected_QoS_2_subscriber_should_get_every_acknowledged_message_once_across_kill_9(ClientVersion version)
    {
        string[] args = [$"--Node:DataDir={_nodes.DataDir}", "--Sessions:MaxQueuedMessages=100000"];
        var run = Guid.NewGuid().ToString("N")[..8];
        var topic = $"qos2out/{run}";
        var subscriberId = $"qos2out-sub-{run}";
        var node = await _nodes.StartAsync(args);

        var subscriber = new Qos2Receiver();
        var (sub, _) = await ConnectAsync(node.MqttPort, version, subscriberId, cleanStart: false, sessionExpiry: 3600);
        await sub.SubscribeAsync(1, topic, MqttQoS.ExactlyOnce);
        var reading = subscriber.ReadUntilClosedAsync(sub);

        var publisherId = $"qos2out-pub-{run}";
        var (pub, _) = await ConnectAsync(node.MqttPort, ClientVersion.V500, publisherId, cleanStart: false, sessionExpiry: 3600);
        var publisher = new Qos2Publisher(topic);
        var underWay = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var flood = publisher.FloodUntilClosedAsync(pub, Max, () =>
        {
            if (publisher.Received >= 3000)
            {
                underWay.TrySetResult();
            }
        });

        await Task.WhenAny(underWay.Task, flood, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.False(flood.IsCompleted, "the flood ended before the kill (raise Max)");
        Assert.True(subscriber.Delivered.Count > 0, "the subscriber had nothing before the kill");
        await node.KillHardAsync();
        await flood;
        await reading;
        await pub.DisposeAsync();
        await sub.DisposeAsync();
        output.WriteLine($"killed with {publisher.Sent} published, {publisher.Received} PUBREC and {publisher.Completed} PUBCOMP; " +
            $"the subscriber had {subscriber.Delivered.Count} and held {subscriber.Held.Count} ids awaiting PUBREL");

        node = await _nodes.StartAsync(args);
        var (again, connAck) = await ConnectAsync(node.MqttPort, version, subscriberId, cleanStart: false, sessionExpiry: 3600);
        var (pubAgain, pubAck) = await ConnectAsync(node.MqttPort, ClientVersion.V500, publisherId, cleanStart: false, sessionExpiry: 3600);
        await using (again)
        await using (pubAgain)
        {
            Assert.True(connAck.SessionPresent, "subscriber's session lost");
            Assert.True(pubAck.SessionPresent, "publisher's session lost");
            await publisher.ResumeAsync(pubAgain, TimeSpan.FromSeconds(60)); // every message it sent is now complete
            var all = Enumerable.Range(0, publisher.Sent).Select(i => $"m-{i:D5}").ToHashSet();
            await subscriber.ReadUntilAsync(again, () => subscriber.Delivered.ToHashSet().IsSupersetOf(all), TimeSpan.FromSeconds(90));
            await subscriber.ReadForAsync(again, TimeSpan.FromMilliseconds(500)); // anything extra would show here
        }

        output.WriteLine($"after the restart: {subscriber.Delivered.Count} delivered of {publisher.Sent} sent ({publisher.CompletedUnknown} PUBREL again for a stored release), " +
            $"{subscriber.SameIdAgain} PUBLISH again under an id held, {subscriber.DupFlagged} with DUP");
        Assert.Equal(subscriber.Delivered.Count, subscriber.Delivered.Distinct().Count()); // exactly once
        Assert.Equal(publisher.Sent, subscriber.Delivered.Count);
        for (var i = 0; i < subscriber.Delivered.Count; i++)
        {
            Assert.Equal(i, Seq(subscriber.Delivered[i])); // in order, no gap
        }
    }

    /// <summary>
    /// A QoS 2 publisher with the session state MQTT gives it: m-00000, m-00001, ... with 100 in flight; what had no
    /// PUBREC is sent again with DUP after a reconnect, what had PUBREC gets PUBREL again [MQTT-4.4.0-1].
    /// </summary>
    private sealed class Qos2Publisher(string topic)
    {
        private const int Window = 100;
        private readonly Dictionary<ushort, (int Seq, bool Received)> _inFlight = new();

        public int Sent { get; private set; }

        public int Received { get; private set; }

        public int Completed { get; private set; }

        /// <summary>PUBCOMP "Packet Identifier not found" (v5): a PUBREL sent again for a release the broker had stored.</summary>
        public int CompletedUnknown { get; private set; }

        public async Task FloodUntilClosedAsync(RawMqttClient client, int max, Action onReceived)
        {
            try
            {
                while (true)
                {
                    while (_inFlight.Count < Window && Sent < max)
                    {
                        var id = (ushort)((Sent % (2 * Window)) + 1);
                        _inFlight[id] = (Sent, false);
                        await client.SendAsync(Publish(id, Sent, dup: false));
                        Sent++;
                    }

                    if (await client.ReceiveAsync(TimeSpan.FromSeconds(30)) is not { } packet)
                    {
                        return;
                    }

                    await HandleAsync(client, packet);
                    onReceived();
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // The node was killed.
            }
        }

        public async Task ResumeAsync(RawMqttClient client, TimeSpan timeout)
        {
            foreach (var (id, (seq, received)) in _inFlight.OrderBy(e => e.Value.Seq))
            {
                await client.SendAsync(received ? new MqttPubRelPacket { PacketId = id } : Publish(id, seq, dup: true));
            }

            var deadline = DateTime.UtcNow + timeout;
            while (_inFlight.Count > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{_inFlight.Count} publishes still in flight after {timeout.TotalSeconds} s");
                var packet = await client.ReceiveAsync(deadline - DateTime.UtcNow);
                Assert.NotNull(packet);
                await HandleAsync(client, packet);
            }
        }

        private MqttPublishPacket Publish(ushort id, int seq, bool dup) => new()
        {
            Topic = topic, Payload = Encoding.UTF8.GetBytes($"m-{seq:D5}"), QoS = MqttQoS.ExactlyOnce, PacketId = id, Dup = dup,
        };

        private async Task HandleAsync(RawMqttClient client, MqttPacket packet)
        {
            switch (packet)
            {
                case MqttPubRecPacket rec when _inFlight.TryGetValue(rec.PacketId, out var entry):
                    Assert.Equal(MqttReasonCode.Success, rec.ReasonCode);
                    if (!entry.Received)
                    {
                        Received++;
                        _inFlight[rec.PacketId] = entry with { Received = true };
                    }

                    await client.SendAsync(new MqttPubRelPacket { PacketId = rec.PacketId });
                    break;
                case MqttPubCompPacket comp when _inFlight.Remove(comp.PacketId):
                    Completed++;
                    CompletedUnknown += comp.ReasonCode == MqttReasonCode.PacketIdentifierNotFound ? 1 : 0;
                    break;
                case MqttPubRecPacket or MqttPubCompPacket:
                    break; // for an id completed already (a resend crossed its answer)
                default:
                    Assert.Fail($"publisher: unexpected {packet.Type}");
                    break;
            }
        }
    }

    /// <summary>
    /// A QoS 2 receiver with the session state MQTT gives it: delivers a PUBLISH once, answers PUBREC, remembers the id
    /// until PUBREL (a PUBLISH under a remembered id is answered, not delivered), answers PUBREL with PUBCOMP.
    /// </summary>
    private sealed class Qos2Receiver
    {
        public List<string> Delivered { get; } = new();

        public HashSet<ushort> Held { get; } = new();

        public int SameIdAgain { get; private set; }

        public int DupFlagged { get; private set; }

        /// <summary>Reads until the node is killed under it.</summary>
        public async Task ReadUntilClosedAsync(RawMqttClient client)
        {
            await Task.Yield();
            try
            {
                while (await client.ReceiveAsync(TimeSpan.FromSeconds(60)) is { } packet)
                {
                    await HandleAsync(client, packet);
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // The node was killed.
            }
        }

        public async Task ReadUntilAsync(RawMqttClient client, Func<bool> done, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!done())
            {
                var left = deadline - DateTime.UtcNow;
                Assert.True(left > TimeSpan.Zero, $"only {Delivered.Count} delivered within {timeout.TotalSeconds} s");
                var packet = await client.ReceiveAsync(left);
                Assert.NotNull(packet);
                await HandleAsync(client, packet);
            }
        }

        public Task ReadForAsync(RawMqttClient client, TimeSpan window) =>
            DurableClient.ReadForAsync(client, window, packet => HandleAsync(client, packet));

        private async Task HandleAsync(RawMqttClient client, MqttPacket packet)
        {
            switch (packet)
            {
                case MqttPublishPacket p:
                    Assert.Equal(MqttQoS.ExactlyOnce, p.QoS);
                    DupFlagged += p.Dup ? 1 : 0;
                    if (Held.Add(p.PacketId))
                    {
                        Delivered.Add(Encoding.UTF8.GetString(p.Payload.Span));
                    }
                    else
                    {
                        SameIdAgain++;
                    }

                    await client.SendAsync(new MqttPubRecPacket { PacketId = p.PacketId });
                    break;
                case MqttPubRelPacket rel:
                    Held.Remove(rel.PacketId);
                    await client.SendAsync(new MqttPubCompPacket { PacketId = rel.PacketId });
                    break;
                default:
                    Assert.Fail($"unexpected {packet.Type}");
                    break;
            }
        }
    }

    public void Dispose() => _nodes.Dispose();
}
