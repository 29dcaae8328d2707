using System.Net;
using System.Net.Sockets;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;

namespace Broker.LoadTests.Runner;

/// <summary>
/// The leanest MQTT device the runner has, for connection floods: a bare socket, pre-encoded frames written in one
/// send, and a hand-rolled reader that only frames packets (fixed header and remaining length) and looks at the few
/// bytes a connect needs (CONNACK's return code, SUBACK's first code, a PUBLISH's arrival). No reader task, no
/// window, no decoder object: an idle device is its socket and a small buffer, so the generator costs little next
/// to the broker it floods (the scenarios report its CPU beside the broker's).
/// </summary>
public sealed class LeanDevice : IDisposable
{
    private readonly byte[] _buffer = new byte[64];
    private int _filled;

    private LeanDevice(Socket socket)
    {
        Socket = socket;
    }

    public Socket Socket { get; }

    /// <summary>CONNACK's session-present flag.</summary>
    public bool SessionPresent { get; private set; }

    /// <summary>Encodes CONNECT (and optionally more packets behind it) once, for one send.</summary>
    public static byte[] Frames(MqttProtocolVersion version, params MqttPacket[] packets)
    {
        var size = packets.Sum(p => MqttPacketEncoder.GetSize(p, version));
        var frames = new byte[size];
        var at = 0;
        foreach (var p in packets)
        {
            at += MqttPacketEncoder.Encode(p, version, frames.AsSpan(at));
        }

        return frames;
    }

    public static MqttConnectPacket Connect(string clientId, MqttProtocolVersion version, bool cleanStart, uint sessionExpiry = 0) => new()
    {
        ClientId = clientId, ProtocolVersion = version, CleanStart = cleanStart, KeepAlive = 600,
        SessionExpiryInterval = version == MqttProtocolVersion.V500 ? sessionExpiry : 0,
    };

    /// <summary>
    /// Opens a socket, sends <paramref name="frames"/> (CONNECT first) in one write and reads CONNACK. Returns the
    /// device and CONNACK's return code (0 accepted); a refused device is closed already.
    /// </summary>
    public static async Task<(LeanDevice? Device, byte Code)> OpenAsync(IPEndPoint target, byte[] frames, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var device = new LeanDevice(socket);
        try
        {
            await socket.ConnectAsync(target, ct);
            await socket.SendAsync(frames, SocketFlags.None, ct);
            var (type, body, length) = await device.ReadPacketAsync(ct);
            if (type != 2 || length < 2)
            {
                throw new IOException($"expected CONNACK, got packet type {type}");
            }

            device.SessionPresent = (device._buffer[body] & 1) != 0;
            var code = device._buffer[body + 1];
            device.Consume(body + length);
            if (code != 0)
            {
                device.Abort();
                return (null, code);
            }

            return (device, 0);
        }
        catch
        {
            device.Abort();
            throw;
        }
    }

    /// <summary>
    /// Reads one packet's fixed header and as much of its body as the buffer holds; returns its type, where its body
    /// starts in the buffer and its length. Bodies longer than the buffer are skipped (only their type matters here).
    /// </summary>
    public async Task<(int Type, int Body, int Length)> ReadPacketAsync(CancellationToken ct)
    {
        while (true)
        {
            if (TryFrame(out var type, out var body, out var length))
            {
                if (body + length <= _filled)
                {
                    return (type, body, length);
                }

                if (body + length > _buffer.Length)
                {
                    await SkipAsync(body + length, ct);
                    return (type, 0, 0);
                }
            }

            var n = await Socket.ReceiveAsync(_buffer.AsMemory(_filled), SocketFlags.None, ct);
            if (n == 0)
            {
                throw new IOException("connection closed by the broker");
            }

            _filled += n;
        }
    }

    /// <summary>Drops the packet just read (its body and length as <see cref="ReadPacketAsync"/> returned them).</summary>
    public void Consume(int end)
    {
        end = Math.Min(end, _filled);
        Buffer.BlockCopy(_buffer, end, _buffer, 0, _filled - end);
        _filled -= end;
    }

    public byte this[int index] => _buffer[index];

    private bool TryFrame(out int type, out int body, out int length)
    {
        type = body = length = 0;
        if (_filled < 2)
        {
            return false;
        }

        type = _buffer[0] >> 4;
        var multiplier = 1;
        for (var i = 1; i < 5; i++)
        {
            if (i >= _filled)
            {
                return false;
            }

            length += (_buffer[i] & 0x7F) * multiplier;
            if ((_buffer[i] & 0x80) == 0)
            {
                body = i + 1;
                return true;
            }

            multiplier *= 128;
        }

        throw new IOException("malformed remaining length from the broker");
    }

    private async Task SkipAsync(int total, CancellationToken ct)
    {
        var left = total - _filled;
        _filled = 0;
        while (left > 0)
        {
            var n = await Socket.ReceiveAsync(_buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                throw new IOException("connection closed by the broker");
            }

            if (n > left)
            {
                Buffer.BlockCopy(_buffer, left, _buffer, 0, n - left);
                _filled = n - left;
                return;
            }

            left -= n;
        }
    }

    public Task SendAsync(byte[] frames, CancellationToken ct) => Socket.SendAsync(frames, SocketFlags.None, ct).AsTask();

    /// <summary>Drops the connection with a reset (no DISCONNECT, no FIN): to the broker, a device that vanished.</summary>
    public void Abort()
    {
        try
        {
            Socket.LingerState = new LingerOption(true, 0);
            Socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public void Dispose() => Abort();
}
