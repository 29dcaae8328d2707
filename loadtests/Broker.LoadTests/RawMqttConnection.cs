using System.Buffers;
using System.Net.Sockets;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;

namespace Broker.LoadTests;

/// <summary>
/// A lean load-generating MQTT client on a raw socket and the broker's own codec: it writes pre-encoded frames in
/// large batches and decodes what comes back, so that the client side costs little next to the broker.
/// </summary>
public sealed class RawMqttConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly MqttPacketDecoder _decoder = new(64 * 1024 * 1024);
    private readonly byte[] _readBuffer;
    private byte[] _pending = [];
    private int _pendingLength;
    private int _offset;

    private RawMqttConnection(Socket socket, MqttProtocolVersion version, int readBufferSize)
    {
        _socket = socket;
        _readBuffer = new byte[readBufferSize];
        _stream = new NetworkStream(socket, ownsSocket: true);
        Version = version;
        _decoder.ProtocolVersion = version;
    }

    public MqttProtocolVersion Version { get; }

    public static async Task<RawMqttConnection> ConnectAsync(
        string host, int port, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V311, bool cleanStart = true,
        CancellationToken ct = default, uint sessionExpiry = 0, int readBufferSize = 256 * 1024)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        RawMqttConnection? connection = null;
        try
        {
            await socket.ConnectAsync(host, port, ct);
            connection = new RawMqttConnection(socket, version, readBufferSize);
            await connection.SendAsync(new MqttConnectPacket
            {
                ClientId = clientId, ProtocolVersion = version, CleanStart = cleanStart, KeepAlive = 600,
                ReceiveMaximum = version == MqttProtocolVersion.V500 ? (ushort)65535 : null,
                SessionExpiryInterval = version == MqttProtocolVersion.V500 ? sessionExpiry : 0,
            }, ct);
            var connack = await connection.ReceiveAsync(ct);
            if (connack is not MqttConnAckPacket { ReasonCode: 0 } ack)
            {
                throw new InvalidOperationException($"CONNECT of {clientId} to {host}:{port} refused: {connack}");
            }

            connection.SessionPresent = ack.SessionPresent;
            return connection;
        }
        catch
        {
            if (connection is not null)
            {
                await connection._stream.DisposeAsync();
            }
            else
            {
                socket.Dispose();
            }

            throw;
        }
    }

    /// <summary>CONNACK's session-present flag.</summary>
    public bool SessionPresent { get; private set; }

    /// <summary>Closes the socket without DISCONNECT (the broker sees a lost connection).</summary>
    public void Abort() => _socket.Close(0);

    public ValueTask SendAsync(MqttPacket packet, CancellationToken ct = default) =>
        _stream.WriteAsync(MqttPacketEncoder.Encode(packet, Version), ct);

    public ValueTask SendRawAsync(ReadOnlyMemory<byte> frames, CancellationToken ct = default) => _stream.WriteAsync(frames, ct);

    /// <summary>Reads until one whole packet is decoded (null at end of stream).</summary>
    public async Task<MqttPacket?> ReceiveAsync(CancellationToken ct = default)
    {
        while (true)
        {
            if (TryDecodeOne(out var packet))
            {
                return packet;
            }

            var n = await _stream.ReadAsync(_readBuffer, ct);
            if (n == 0)
            {
                return null;
            }

            Append(_readBuffer.AsSpan(0, n));
        }
    }

    /// <summary>Reads whatever is available and hands every decoded packet to the callback; false at end of stream.</summary>
    public async Task<bool> ReceiveBatchAsync(Action<MqttPacket> onPacket, CancellationToken ct = default)
    {
        // Packets that arrived behind the CONNACK (a resumed session's resends, in the same TCP segment) are already
        // buffered: hand them over before waiting for more, or a broker whose window they fill would wait forever.
        var buffered = false;
        while (TryDecodeOne(out var early))
        {
            onPacket(early!);
            buffered = true;
        }

        if (buffered)
        {
            return true;
        }

        var n = await _stream.ReadAsync(_readBuffer, ct);
        if (n == 0)
        {
            return false;
        }

        Append(_readBuffer.AsSpan(0, n));
        while (TryDecodeOne(out var packet))
        {
            onPacket(packet!);
        }

        return true;
    }

    private bool TryDecodeOne(out MqttPacket? packet)
    {
        packet = null;
        var available = _pendingLength - _offset;
        if (available == 0)
        {
            return false;
        }

        var sequence = new ReadOnlySequence<byte>(_pending, _offset, available);
        if (!_decoder.TryDecode(ref sequence, out packet))
        {
            return false;
        }

        _offset += available - (int)sequence.Length;
        return true;
    }

    private void Append(ReadOnlySpan<byte> data)
    {
        if (_offset > 0)
        {
            Buffer.BlockCopy(_pending, _offset, _pending, 0, _pendingLength - _offset);
            _pendingLength -= _offset;
            _offset = 0;
        }

        if (_pending.Length < _pendingLength + data.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingLength + data.Length));
        }

        data.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += data.Length;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await SendAsync(MqttDisconnectPacket.Normal);
        }
        catch (IOException)
        {
        }
        catch (SocketException)
        {
        }

        await _stream.DisposeAsync();
    }
}
