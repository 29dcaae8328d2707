using System.Text;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>One PUBLISH as a subscriber saw it.</summary>
public sealed record ReceivedPublish(string Topic, string Payload, MqttQoS QoS, bool Dup, bool Retain, ushort PacketId);

/// <summary>
/// What the durability specs do over <see cref="RawMqttClient"/>: connect with a given session mode, publish many
/// messages with a bounded window of unacknowledged ones, and receive with acknowledgements (or deliberately
/// without). The raw client reads from its socket only when asked, so nothing the broker sends right after CONNACK
/// (queued messages) can be missed.
/// </summary>
public static class DurableClient
{
    public static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a connect waits for its CONNACK: longer than the broker's own limit for attaching a session (10 s), so
    /// that a session the broker cannot attach shows as its refusal (0x88), not as a client that stopped waiting. A
    /// node just restarted after kill -9 on a loaded machine may take more than a few seconds to answer the first
    /// resumes; these specs check what is kept, not how fast.
    /// </summary>
    public static readonly TimeSpan ConnAckTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Connects and asserts CONNACK success; v5 clients get the session expiry, 3.1.1 clients Clean Session = cleanStart.</summary>
    public static async Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectAsync(
        int port, ClientVersion version, string clientId, bool cleanStart, uint sessionExpiry = 0)
    {
        var (client, connAck) = await RawMqttClient.ConnectAsync(port, version, clientId, c => c with
        {
            CleanStart = cleanStart,
            SessionExpiryInterval = version == ClientVersion.V500 ? sessionExpiry : 0,
            KeepAlive = 0,
        }, ConnAckTimeout);
        if (connAck.ReasonCode != 0)
        {
            await client.DisposeAsync();
            Assert.Fail($"CONNACK for {clientId}: reason 0x{connAck.ReasonCode:X2}");
        }

        return (client, connAck);
    }

    /// <summary>Sends DISCONNECT (normal) and closes the socket.</summary>
    public static async Task DisconnectAsync(RawMqttClient client)
    {
        await client.SendAsync(MqttDisconnectPacket.Normal);
        await client.DisposeAsync();
    }

    /// <summary>
    /// Publishes every payload at QoS 1 or 2, at most <paramref name="window"/> unacknowledged at a time, and returns
    /// once each was acknowledged (PUBACK; PUBREC then PUBCOMP) with a success reason. Fails on any other answer.
    /// </summary>
    public static async Task PublishAllAsync(
        RawMqttClient client, string topic, MqttQoS qos, IReadOnlyList<string> payloads, bool retain = false, int window = 50)
    {
        Assert.NotEqual(MqttQoS.AtMostOnce, qos);
        for (var start = 0; start < payloads.Count; start += window)
        {
            var count = Math.Min(window, payloads.Count - start);
            var bytes = new List<byte>();
            var pending = new HashSet<ushort>();
            for (var i = 0; i < count; i++)
            {
                var id = (ushort)(i + 1);
                pending.Add(id);
                bytes.AddRange(MqttPacketEncoder.Encode(
                    new MqttPublishPacket
                    {
                        Topic = topic,
                        Payload = Encoding.UTF8.GetBytes(payloads[start + i]),
                        QoS = qos,
                        Retain = retain,
                        PacketId = id,
                    },
                    client.Version));
            }

            await client.SendRawAsync(bytes.ToArray());
            while (pending.Count > 0)
            {
                var packet = await client.ReceiveAsync(AckTimeout)
                    ?? throw new InvalidOperationException($"broker closed the publisher's connection with {pending.Count} publishes unacknowledged");
                switch (packet)
                {
                    case MqttPubAckPacket ack when qos == MqttQoS.AtLeastOnce:
                        AssertSuccess(ack);
                        Assert.True(pending.Remove(ack.PacketId), $"PUBACK for unknown id {ack.PacketId}");
                        break;
                    case MqttPubRecPacket rec when qos == MqttQoS.ExactlyOnce:
                        AssertSuccess(rec);
                        await client.SendAsync(new MqttPubRelPacket { PacketId = rec.PacketId });
                        break;
                    case MqttPubCompPacket comp when qos == MqttQoS.ExactlyOnce:
                        AssertSuccess(comp);
                        Assert.True(pending.Remove(comp.PacketId), $"PUBCOMP for unknown id {comp.PacketId}");
                        break;
                    default:
                        Assert.Fail($"unexpected {packet.Type} while publishing");
                        break;
                }
            }
        }
    }

    /// <summary>
    /// Reads until <paramref name="done"/> says the messages so far are enough, answering PUBLISH (PUBACK / PUBREC)
    /// and PUBREL (PUBCOMP) as a well-behaved client does. Fails if the deadline passes or the broker closes.
    /// </summary>
    public static async Task<List<ReceivedPublish>> ReceiveUntilAsync(
        RawMqttClient client, Func<IReadOnlyList<ReceivedPublish>, bool> done, TimeSpan timeout, List<ReceivedPublish>? into = null)
    {
        var received = into ?? new List<ReceivedPublish>();
        var deadline = DateTime.UtcNow + timeout;
        while (!done(received))
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"only {received.Count} messages within {timeout.TotalSeconds} s; {Summary(received)}");
            }

            MqttPacket? packet;
            try
            {
                packet = await client.ReceiveAsync(left);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"only {received.Count} messages within {timeout.TotalSeconds} s; {Summary(received)}");
            }

            if (packet is null)
            {
                throw new InvalidOperationException($"broker closed the connection after {received.Count} messages");
            }

            await HandleAsync(client, packet, received);
        }

        return received;
    }

    /// <summary>Reads (and acknowledges) whatever arrives during <paramref name="window"/>; the connection must stay open.</summary>
    public static Task DrainAsync(RawMqttClient client, TimeSpan window, List<ReceivedPublish> into) =>
        ReadForAsync(client, window, packet => HandleAsync(client, packet, into));

    /// <summary>Hands whatever arrives during <paramref name="window"/> to <paramref name="handle"/>; the connection must stay open.</summary>
    public static async Task ReadForAsync(RawMqttClient client, TimeSpan window, Func<MqttPacket, Task> handle)
    {
        var deadline = DateTime.UtcNow + window;
        while (DateTime.UtcNow < deadline)
        {
            MqttPacket? packet;
            try
            {
                packet = await client.ReceiveAsync(deadline - DateTime.UtcNow);
            }
            catch (TimeoutException)
            {
                return;
            }

            Assert.NotNull(packet);
            await handle(packet);
        }
    }

    /// <summary>Publishes prefix-00000, prefix-00001, ... (up to <paramref name="max"/>) keeping 100 in flight; records each acknowledged payload (PUBACK, or PUBREC for QoS 2), in order of publishing, and tells <paramref name="onAcked"/>, until the connection drops.</summary>
    public static async Task FloodAsync(RawMqttClient client, string topic, MqttQoS qos, string prefix, List<string> acked, Action onAcked, int max)
    {
        const int Window = 100;
        var inFlight = new Dictionary<ushort, int>();
        var done = new SortedSet<int>();
        var next = 0;
        var contiguous = 0;
        try
        {
            while (true)
            {
                while (inFlight.Count < Window && next < max)
                {
                    var id = (ushort)((next % (2 * Window)) + 1);
                    inFlight[id] = next;
                    await client.SendAsync(new MqttPublishPacket
                    {
                        Topic = topic,
                        Payload = Encoding.UTF8.GetBytes($"{prefix}-{next:D5}"),
                        QoS = qos,
                        PacketId = id,
                    });
                    next++;
                }

                var packet = await client.ReceiveAsync(TimeSpan.FromSeconds(30));
                if (packet is null)
                {
                    return;
                }

                var ackedId = packet switch
                {
                    MqttPubAckPacket a => a.PacketId,
                    MqttPubRecPacket r => r.PacketId,
                    _ => (ushort)0,
                };
                if (packet is MqttPubRecPacket rec)
                {
                    await client.SendAsync(new MqttPubRelPacket { PacketId = rec.PacketId });
                }

                if (packet is MqttPubCompPacket comp)
                {
                    inFlight.Remove(comp.PacketId);
                    continue;
                }

                if (ackedId == 0 || !inFlight.TryGetValue(ackedId, out var seq))
                {
                    continue;
                }

                Assert.Equal(MqttReasonCode.Success, ((MqttPublishAckPacket)packet).ReasonCode);
                if (qos == MqttQoS.AtLeastOnce)
                {
                    inFlight.Remove(ackedId);
                }

                // Acknowledged in any order; recorded as the contiguous prefix, so the list reads in publishing order.
                onAcked();
                done.Add(seq);
                lock (acked)
                {
                    while (done.Remove(contiguous))
                    {
                        acked.Add($"{prefix}-{contiguous:D5}");
                        contiguous++;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // The node was killed.
        }
    }

    /// <summary>The sequence number at the end of a payload "name-00042".</summary>
    public static int Seq(string payload) => int.Parse(payload[(payload.LastIndexOf('-') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    public static IReadOnlyList<string> Payloads(string prefix, int count) =>
        Enumerable.Range(0, count).Select(i => $"{prefix}-{i:D5}").ToArray();

    private static async Task HandleAsync(RawMqttClient client, MqttPacket packet, List<ReceivedPublish> received)
    {
        switch (packet)
        {
            case MqttPublishPacket p:
                received.Add(new ReceivedPublish(p.Topic, Encoding.UTF8.GetString(p.Payload.Span), p.QoS, p.Dup, p.Retain, p.PacketId));
                if (p.QoS == MqttQoS.AtLeastOnce)
                {
                    await client.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
                }
                else if (p.QoS == MqttQoS.ExactlyOnce)
                {
                    await client.SendAsync(new MqttPubRecPacket { PacketId = p.PacketId });
                }

                break;
            case MqttPubRelPacket rel:
                await client.SendAsync(new MqttPubCompPacket { PacketId = rel.PacketId });
                break;
            default:
                Assert.Fail($"unexpected {packet.Type} while receiving");
                break;
        }
    }

    private static void AssertSuccess(MqttPublishAckPacket ack) =>
        Assert.True(ack.ReasonCode == MqttReasonCode.Success, $"{ack.Type} {ack.PacketId}: reason {ack.ReasonCode}");

    private static string Summary(IReadOnlyList<ReceivedPublish> received) =>
        string.Join(", ", received.GroupBy(r => r.Topic).Select(g => $"{g.Key}: {g.Count()} (last {g.Last().Payload})"));
}
