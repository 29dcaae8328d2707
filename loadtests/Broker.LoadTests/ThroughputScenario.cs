using System.Diagnostics;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;

namespace Broker.LoadTests;

/// <summary>
/// Fan-in throughput: P publishers, each on its own topic bench/p{i}, one subscriber on bench/#. QoS 0 publishers
/// write as fast as the socket takes; QoS 1 publishers keep a window of unacknowledged messages. Reports messages
/// per second received by the subscriber, and loss. Bounded: stops after the count or the time limit.
/// </summary>
public static class ThroughputScenario
{
    public static async Task<int> RunAsync(string host, int port, int publishers, int messagesPerPublisher, MqttQoS qos,
        int payloadSize, TimeSpan limit)
    {
        using var cts = new CancellationTokenSource(limit);
        var total = publishers * messagesPerPublisher;
        await using var subscriber = await RawMqttConnection.ConnectAsync(host, port, "bench-sub-" + Environment.ProcessId, ct: cts.Token);
        await subscriber.SendAsync(new MqttSubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new MqttTopicSubscription { TopicFilter = "bench/#", QoS = qos }],
        }, cts.Token);
        if (await subscriber.ReceiveAsync(cts.Token) is not MqttSubAckPacket)
        {
            throw new InvalidOperationException("no SUBACK");
        }

        var received = 0L;
        var firstAt = 0L;
        var receiveDone = new TaskCompletionSource();
        var receiver = Task.Run(async () =>
        {
            var acks = new List<byte>(64 * 1024);
            try
            {
                while (received < total && await subscriber.ReceiveBatchAsync(p =>
                       {
                           if (p is MqttPublishPacket pub)
                           {
                               if (received++ == 0)
                               {
                                   firstAt = Stopwatch.GetTimestamp();
                               }

                               if (pub.QoS == MqttQoS.AtLeastOnce)
                               {
                                   acks.AddRange(MqttPacketEncoder.Encode(new MqttPubAckPacket { PacketId = pub.PacketId }, MqttProtocolVersion.V311));
                               }
                           }
                       }, cts.Token))
                {
                    if (acks.Count > 0)
                    {
                        await subscriber.SendRawAsync(acks.ToArray(), cts.Token);
                        acks.Clear();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }

            receiveDone.TrySetResult();
        });

        var payload = new byte[payloadSize];
        var started = Stopwatch.GetTimestamp();
        var tasks = Enumerable.Range(0, publishers).Select(i => Task.Run(async () =>
        {
            await using var pub = await RawMqttConnection.ConnectAsync(host, port, $"bench-pub-{i}", ct: cts.Token);
            var topic = $"bench/p{i}";
            const int batch = 100;
            for (var sent = 0; sent < messagesPerPublisher && !cts.IsCancellationRequested;)
            {
                var n = Math.Min(batch, messagesPerPublisher - sent);
                var frames = new List<byte>(n * (payloadSize + 32));
                for (var k = 0; k < n; k++)
                {
                    frames.AddRange(MqttPacketEncoder.Encode(new MqttPublishPacket
                    {
                        Topic = topic, Payload = payload, QoS = qos, PacketId = qos == MqttQoS.AtMostOnce ? (ushort)0 : (ushort)(k + 1),
                    }, MqttProtocolVersion.V311));
                }

                await pub.SendRawAsync(frames.ToArray(), cts.Token);
                if (qos == MqttQoS.AtLeastOnce)
                {
                    for (var acked = 0; acked < n;)
                    {
                        if (!await pub.ReceiveBatchAsync(p => { if (p is MqttPubAckPacket) { acked++; } }, cts.Token))
                        {
                            throw new IOException("publisher connection closed");
                        }
                    }
                }

                sent += n;
            }
        })).ToArray();

        try
        {
            await Task.WhenAll(tasks);
            var publishedAt = Stopwatch.GetTimestamp();
            await receiveDone.Task;
            var elapsed = Stopwatch.GetElapsedTime(started);
            Console.WriteLine(
                $"fan-in QoS {(int)qos}: {publishers} publishers x {messagesPerPublisher} msgs, {payloadSize} B payload: " +
                $"received {received}/{total} in {elapsed.TotalSeconds:F2} s = {received / elapsed.TotalSeconds:F0} msg/s " +
                $"(publishers done after {Stopwatch.GetElapsedTime(started, publishedAt).TotalSeconds:F2} s)");
            return received == total ? 0 : 1;
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine($"time limit reached: received {received}/{total}");
            return 1;
        }
    }
}
