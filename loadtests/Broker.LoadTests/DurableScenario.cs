using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using HdrHistogram;

namespace Broker.LoadTests;

/// <summary>
/// Durable QoS 1 throughput: S persistent subscribers (clean session 0, QoS 1) on one topic, one QoS 1 publisher
/// keeping W publishes in flight. Every PUBACK means the message is journaled for all S sessions. Reports
/// publishes per second, stored deliveries per second (x S) and publish-to-PUBACK latency p50/p99.
/// </summary>
public static class DurableScenario
{
    public static async Task<int> RunAsync(string host, int port, int subscribers, int messages, int window, TimeSpan limit, int payloadBytes = 64)
    {
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
                PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = topic, QoS = MqttQoS.AtLeastOnce }],
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
                               acks.AddRange(MqttPacketEncoder.Encode(new MqttPubAckPacket { PacketId = pub.PacketId }, MqttProtocolVersion.V311));
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

        await using var pub = await RawMqttConnection.ConnectAsync(host, port, $"dur-pub-{runId}", ct: cts.Token);
        var histogram = new LongHistogram(TimeStamp.Seconds(60), 3);
        var sentAt = new long[65536];
        var payload = new byte[payloadBytes];
        var started = Stopwatch.GetTimestamp();
        var sent = 0;
        var acked = 0;
        ushort nextId = 0;
        try
        {
            while (acked < messages)
            {
                var batch = new List<byte>();
                while (sent < messages && sent - acked < window)
                {
                    nextId = nextId == ushort.MaxValue ? (ushort)1 : (ushort)(nextId + 1);
                    sentAt[nextId] = Stopwatch.GetTimestamp();
                    batch.AddRange(MqttPacketEncoder.Encode(new MqttPublishPacket
                    {
                        Topic = topic, Payload = payload, QoS = MqttQoS.AtLeastOnce, PacketId = nextId,
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
                            histogram.RecordValue(Stopwatch.GetTimestamp() - sentAt[ack.PacketId]);
                        }
                    }, cts.Token))
                {
                    throw new IOException("publisher connection closed");
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
                $"durable QoS 1, {subscribers} persistent subscriber(s), {payloadBytes}-byte payloads, window {window}: {messages} publishes acknowledged in " +
                $"{elapsed.TotalSeconds:F2} s = {messages / elapsed.TotalSeconds:F0} publishes/s, " +
                $"{messages * (double)subscribers / elapsed.TotalSeconds:F0} stored deliveries/s; PUBACK latency " +
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
