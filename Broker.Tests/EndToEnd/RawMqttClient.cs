using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using BrokerVersion = Broker.Protocol.MqttProtocolVersion;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// A bare MQTT client over a TcpClient for conformance cases that a well-behaved library will not produce: it writes
/// packet records with the broker's own <see cref="MqttPacketEncoder"/> (or raw bytes) and reads what the broker
/// sends with <see cref="MqttPacketDecoder"/>. Every read is bounded by a timeout; a closed socket reads as null.
/// </summary>
public sealed class RawMqttClient : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly MqttPacketDecoder _decoder = new(64 * 1024 * 1024);
    private byte[] _buffer = new byte[64 * 1024];
    private int _count;
    private bool _closed;

    private RawMqttClient(TcpClient tcp, BrokerVersion version)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        Version = version;
    }

    public BrokerVersion Version { get; }

    public static Task<RawMqttClient> OpenAsync(int port, ClientVersion version) => OpenAsync(IPAddress.Loopback, port, version);

    public static async Task<RawMqttClient> OpenAsync(IPAddress host, int port, ClientVersion version)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(host, port);
        return new RawMqttClient(tcp, (BrokerVersion)(byte)version);
    }

    /// <summary>
    /// Opens a socket, sends CONNECT and returns the client with the CONNACK it got (waited for up to
    /// <paramref name="connAckTimeout"/>, by default 5 s).
    /// </summary>
    public static async Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectAsync(
        int port, ClientVersion version, string clientId, Func<MqttConnectPacket, MqttConnectPacket>? configure = null,
        TimeSpan? connAckTimeout = null)
    {
        var client = await OpenAsync(port, version);
        var connect = new MqttConnectPacket { ProtocolVersion = client.Version, ClientId = clientId, CleanStart = true };
        await client.SendAsync(configure?.Invoke(connect) ?? connect);
        var connAck = await client.ExpectAsync<MqttConnAckPacket>(connAckTimeout);
        return (client, connAck);
    }

    public Task SendAsync(MqttPacket packet) => SendRawAsync(MqttPacketEncoder.Encode(packet, Version));

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Reads the next packet; null when the broker closed the connection. Throws after the timeout.</summary>
    public async Task<MqttPacket?> ReceiveAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            if (_count > 0)
            {
                var sequence = new ReadOnlySequence<byte>(_buffer, 0, _count);
                _decoder.ProtocolVersion = Version;
                if (_decoder.TryDecode(ref sequence, out var packet))
                {
                    var consumed = _count - (int)sequence.Length;
                    Buffer.BlockCopy(_buffer, consumed, _buffer, 0, _count - consumed);
                    _count -= consumed;
                    return packet;
                }
            }

            if (_closed)
            {
                return null;
            }

            if (_count == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException("no packet from the broker in time");
            }

            using var cts = new CancellationTokenSource(left);
            int read;
            try
            {
                read = await _stream.ReadAsync(_buffer.AsMemory(_count), cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no packet from the broker in time");
            }
            catch (IOException)
            {
                read = 0;
            }

            if (read == 0)
            {
                _closed = true;
            }

            _count += read;
        }
    }

    /// <summary>Reads the next packet and asserts its type.</summary>
    public async Task<T> ExpectAsync<T>(TimeSpan? timeout = null)
        where T : MqttPacket
    {
        var packet = await ReceiveAsync(timeout);
        return Assert.IsType<T>(packet);
    }

    /// <summary>Reads until the broker closes the socket; returns the packets that came before the close.</summary>
    public async Task<IReadOnlyList<MqttPacket>> ExpectClosedAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        var packets = new List<MqttPacket>();
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException("the broker did not close the connection in time");
            }

            var packet = await ReceiveAsync(left);
            if (packet is null)
            {
                return packets;
            }

            packets.Add(packet);
        }
    }

    /// <summary>Asserts that nothing at all arrives within the window (the connection stays open and silent).</summary>
    public async Task AssertSilentAsync(TimeSpan window)
    {
        try
        {
            var packet = await ReceiveAsync(window);
            Assert.Fail($"expected silence, got {(packet is null ? "a close" : packet.Type.ToString())}");
        }
        catch (TimeoutException)
        {
        }
    }

    /// <summary>Subscribes and returns the SUBACK.</summary>
    public async Task<MqttSubAckPacket> SubscribeAsync(ushort packetId, string filter, Broker.Protocol.MqttQoS qos)
    {
        await SendAsync(new MqttSubscribePacket
        {
            PacketId = packetId,
            Subscriptions = [new MqttTopicSubscription { TopicFilter = filter, QoS = qos }],
        });
        var subAck = await ExpectAsync<MqttSubAckPacket>();
        Assert.Equal(packetId, subAck.PacketId);
        return subAck;
    }

    /// <summary>Drops the TCP connection without DISCONNECT (an abnormal close for the broker).</summary>
    public void Abort()
    {
        _tcp.Close();
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
