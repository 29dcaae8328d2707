using System.Diagnostics;
using System.Net.Sockets;
using Broker.Tests.EndToEnd;

namespace Broker.Tests.Robustness;

/// <summary>
/// Clients that send garbage, stop half-way through a packet, or vanish without DISCONNECT: the broker closes (or
/// forgets) only those connections, while a healthy MQTTnet client keeps publishing and receiving through the same
/// broker the whole time. The connect timeout is 2 s here so that half-open connections are closed quickly.
/// </summary>
public sealed class MisbehavingClientSpecs
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    private static Task<BrokerHarness> StartBrokerAsync() =>
        BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { ConnectTimeout = 2 } });

    /// <summary>Each shape: bytes sent before (or instead of) a CONNECT, or bytes sent after a CONNACK.</summary>
    private static IEnumerable<(string Name, bool ConnectFirst, byte[] Bytes)> GarbageShapes()
    {
        foreach (var seed in new[] { 1, 2, 3, 4 })
        {
            var bytes = new byte[512];
            new Random(seed).NextBytes(bytes);
            yield return ($"random bytes (seed {seed})", false, bytes);
        }

        var afterConnect = new byte[512];
        new Random(5).NextBytes(afterConnect);
        afterConnect[0] = 0x00; // reserved packet type 0 [MQTT-2.1.2]: malformed
        yield return ("valid CONNECT then garbage", true, afterConnect);

        var randomAfterConnect = new byte[512];
        new Random(6).NextBytes(randomAfterConnect);
        yield return ("valid CONNECT (keep alive 1 s) then random bytes", true, randomAfterConnect);

        yield return ("CONNECT with the largest remaining length", false, [0x10, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x04]);
        yield return ("remaining length longer than 4 bytes", false, [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        yield return ("valid CONNECT then a PUBLISH with the largest remaining length", true, [0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00]);
        yield return ("second CONNECT", true, RawMqtt.Connect("again"));
    }

    [Fact]
    public async Task Garbage_should_close_only_the_sending_connection()
    {
        await using var broker = await StartBrokerAsync();
        await using var healthy = await HealthyTraffic.StartAsync(broker);

        var shapes = GarbageShapes().ToList();
        for (var round = 0; round < 3; round++)
        {
            var received = healthy.ReceivedCount;
            var closed = await Task.WhenAll(shapes.Select(async (shape, i) =>
            {
                using var socket = await RawMqtt.OpenAsync(broker.Port);
                if (shape.ConnectFirst)
                {
                    await RawMqtt.ConnectAndExpectConnAckAsync(socket, $"garbage-{round}-{i}", CloseTimeout, keepAlive: 1);
                }

                try
                {
                    await socket.SendAsync(shape.Bytes, SocketFlags.None);
                }
                catch (SocketException)
                {
                    // The broker may close while the bytes are still going out: that is the expected outcome.
                }

                return await RawMqtt.WaitForCloseAsync(socket, CloseTimeout, shape.Name);
            }));

            Assert.Equal(shapes.Count, closed.Length);
            await healthy.AssertFlowingAsync();
            Assert.True(healthy.ReceivedCount > received);
        }

        await healthy.StopAndVerifyAsync();
        Assert.True(broker.Server.Context.Metrics.ProtocolErrors > 0);
    }

    [Fact]
    public async Task Half_sent_CONNECT_should_be_closed_by_the_connect_timeout()
    {
        await using var broker = await StartBrokerAsync();
        await using var healthy = await HealthyTraffic.StartAsync(broker);

        using var socket = await RawMqtt.OpenAsync(broker.Port);
        var connect = RawMqtt.Connect("half-sent");
        byte[] header = [0x10, 100]; // claims 100 bytes of variable header and payload
        await socket.SendAsync(header.Concat(connect.Skip(2).Take(8)).ToArray(), SocketFlags.None);

        // The broker must neither wait forever for the other 90 bytes nor stall the healthy client meanwhile.
        var closedAfter = await RawMqtt.WaitForCloseAsync(socket, CloseTimeout, "half-sent CONNECT");
        Assert.True(closedAfter >= TimeSpan.FromSeconds(1), $"closed after {closedAfter}: before the connect timeout");

        await healthy.AssertFlowingAsync();
        await healthy.StopAndVerifyAsync();
        await WaitForConnectionsAsync(broker, expected: 1);
    }

    [Fact]
    public async Task Connections_dropped_without_DISCONNECT_should_be_released()
    {
        const int total = 1_000;
        const int batch = 50;
        await using var broker = await StartBrokerAsync();
        await using var healthy = await HealthyTraffic.StartAsync(broker);
        Assert.Equal(1, broker.Server.Context.Metrics.Connections);

        var watch = Stopwatch.StartNew();
        for (var start = 0; start < total; start += batch)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"only {start} of {total} connections in 60 s");
            await Task.WhenAll(Enumerable.Range(start, batch).Select(async i =>
            {
                var socket = await RawMqtt.OpenAsync(broker.Port);
                try
                {
                    if (i % 2 == 0)
                    {
                        // Fully connected, then gone.
                        await RawMqtt.ConnectAndExpectConnAckAsync(socket, $"dropped-{i}", TimeSpan.FromSeconds(15));
                    }
                    else
                    {
                        // Gone while the broker is still attaching the session.
                        await socket.SendAsync(RawMqtt.Connect($"dropped-{i}"), SocketFlags.None);
                    }
                }
                finally
                {
                    RawMqtt.Abort(socket);
                }
            }));
        }

        await healthy.AssertFlowingAsync();
        await WaitForConnectionsAsync(broker, expected: 1);

        // Awaited, not counted against the clock: a churn that took 2 s once left the healthy client only 7 messages.
        await healthy.AssertFlowingAsync(more: 10);
        await healthy.StopAndVerifyAsync(atLeast: 10);
    }

    private static async Task WaitForConnectionsAsync(BrokerHarness broker, long expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (broker.Server.Context.Metrics.Connections != expected)
        {
            Assert.True(DateTime.UtcNow < deadline,
                $"the broker still counts {broker.Server.Context.Metrics.Connections} connections, expected {expected}");
            await Task.Delay(50);
        }
    }
}
