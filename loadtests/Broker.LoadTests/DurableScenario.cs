using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using HdrHistogram;

namespace Broker.LoadTests;

/// <summary>
/// Durable QoS 1 or QoS 2 throughput: S persistent subscribers (clean session 0, subscribed at the QoS) on one topic,
/// one publisher keeping W publishes in flight. Every PUBACK (QoS 1) or PUBREC (QoS 2) means the message is journaled
/// for all S sessions. At QoS 2 the publisher's session is persistent too (clean session 0), so its inbound QoS 2
/// state is journaled, and a publish stays in the window until PUBCOMP. Reports publishes per second, stored
/// deliveries per second (x S) and publish-to-PUBACK/PUBREC latency p50/p99.
/// </summary>
public static class DurableScenario
{
    public static async Task<int> RunAsync(string host, int port, int subscribers, int messages, int window, TimeSpan limit, MqttQoS qos = MqttQoS.AtLeastOnce, int payloadBytes = 64)
    {
        if (qos is not (MqttQoS.AtLeastOnce or MqttQoS.ExactlyOnce))
        {
            Console.Error.WriteLine($"durable: qos must be 1 or 2, not {(int)qos}");
            return 1;
        }

        using var cts = new CancellationTokenSource(limit);
        var runId = Environment.ProcessId + "-" + Environment.TickCount64;
        var topic = $"durable/{runId}";
        var subs = new List<RawMqttConnection>();
        var received = new long[subscribers];
        for (var i = 0; i < subscribers; i++)
        {
            var sub = await RawMqttConnection.ConnectAsync(host, port, $"dur-sub-{runId}-{i}", cleanStart: false, ct: cts.Token);
            await sub.SendAsync(new MqttSubscribePacket
            {
                PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = topic, QoS = qos }],
            }, cts.Token);
            if (await sub.ReceiveAsync(cts.Token) is not MqttSubAckPacket)
            {
                throw new InvalidOperationException("no SUBACK");
            }

            subs.Add(sub);
        }

        var readers = subs.Select((sub, index) => Task.Run(async () =>
        {
            var acks = new List<byte>(16 * 1024);
            try
            {
                while (Interlocked.Read(ref received[index]) < messages && await sub.ReceiveBatchAsync(p =>
                       {
                           if (p is MqttPublishPacket pub)
                           {
                               Interlocked.Increment(ref received[index]);
                               acks.AddRange(MqttPacketEncoder.Encode(
                                   qos == MqttQoS.AtLeastOnce ? new MqttPubAckPacket { PacketId = pub.PacketId } : new MqttPubRecPacket { PacketId = pub.PacketId },
                                   MqttProtocolVersion.V311));
                           }
                           else if (p is MqttPubRelPacket rel)
                           {
                               acks.AddRange(MqttPacketEncoder.Encode(new MqttPubCompPacket { PacketId = rel.PacketId }, MqttProtocolVersion.V311));
                           }
                       }, cts.Token))
                {
                    if (acks.Count > 0)
                    {
                        await sub.SendRawAsync(acks.ToArray(), cts.Token);
                        acks.Clear();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        })).ToArray();

        await using var pub = await RawMqttConnection.ConnectAsync(host, port, $"dur-pub-{runId}", cleanStart: qos == MqttQoS.AtLeastOnce, ct: cts.Token);
        var histogram = new LongHistogram(TimeStamp.Seconds(60), 3);
        var sentAt = new long[65536];
        var payload = new byte[payloadBytes];
        var started = Stopwatch.GetTimestamp();
        var sent = 0;
        var acked = 0; // PUBACK (QoS 1) or PUBREC (QoS 2): the message is stored
        var completed = 0; // PUBACK or PUBCOMP: the packet id is free again
        var releases = new List<byte>();
        ushort nextId = 0;
        try
        {
            while (completed < messages)
            {
                var batch = new List<byte>();
                while (sent < messages && sent - completed < window)
                {
                    nextId = nextId == ushort.MaxValue ? (ushort)1 : (ushort)(nextId + 1);
                    sentAt[nextId] = Stopwatch.GetTimestamp();
                    batch.AddRange(MqttPacketEncoder.Encode(new MqttPublishPacket
                    {
                        Topic = topic, Payload = payload, QoS = qos, PacketId = nextId,
                    }, MqttProtocolVersion.V311));
                    sent++;
                }

                if (batch.Count > 0)
                {
                    await pub.SendRawAsync(batch.ToArray(), cts.Token);
                }

                if (!await pub.ReceiveBatchAsync(p =>
                    {
                        if (p is MqttPubAckPacket ack)
                        {
                            acked++;
                            completed++;
                            histogram.RecordValue(Stopwatch.GetTimestamp() - sentAt[ack.PacketId]);
                        }
                        else if (p is MqttPubRecPacket rec)
                        {
                            acked++;
                            histogram.RecordValue(Stopwatch.GetTimestamp() - sentAt[rec.PacketId]);
                            releases.AddRange(MqttPacketEncoder.Encode(new MqttPubRelPacket { PacketId = rec.PacketId }, MqttProtocolVersion.V311));
                        }
                        else if (p is MqttPubCompPacket)
                        {
                            completed++;
                        }
                    }, cts.Token))
                {
                    throw new IOException("publisher connection closed");
                }

                if (releases.Count > 0)
                {
                    await pub.SendRawAsync(releases.ToArray(), cts.Token);
                    releases.Clear();
                }
            }

            var elapsed = Stopwatch.GetElapsedTime(started);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (received.Any(r => Interlocked.Read(ref r) < messages) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            var ms = Stopwatch.Frequency / 1000.0;
            Console.WriteLine(
                $"durable QoS {(int)qos}, {subscribers} persistent subscriber(s), {payloadBytes}-byte payloads, window {window}: {messages} publishes acknowledged in " +
                $"{elapsed.TotalSeconds:F2} s = {messages / elapsed.TotalSeconds:F0} publishes/s, " +
                $"{messages * (double)subscribers / elapsed.TotalSeconds:F0} stored deliveries/s; {(qos == MqttQoS.AtLeastOnce ? "PUBACK" : "PUBREC")} latency " +
                $"p50 {histogram.GetValueAtPercentile(50) / ms:F2} ms, p99 {histogram.GetValueAtPercentile(99) / ms:F2} ms, " +
                $"max {histogram.GetMaxValue() / ms:F2} ms; received per subscriber: {string.Join(",", received)}");
            return received.All(r => r >= messages) ? 0 : 1;
        }
        finally
        {
            foreach (var sub in subs)
            {
                await sub.DisposeAsync();
            }
        }
    }
}
