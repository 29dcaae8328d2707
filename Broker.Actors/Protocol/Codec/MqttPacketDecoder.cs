using System.Buffers;
using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

/// <summary>
/// Decodes MQTT 3.1, 3.1.1 and 5.0 control packets from bytes; one instance per connection, because the body layout
/// depends on the protocol level the CONNECT announced (<see cref="ProtocolVersion"/>). It owns framing (fixed header,
/// Remaining Length, the maximum packet size) and the wire-format rules of each packet; it does not own session or
/// authorization rules, nor topic-filter syntax. Packets it returns never reference the input: payloads, binary data
/// and strings are copied out. Every kind of bad input ends in <see cref="MqttProtocolException"/>.
/// <code>
///  ┌────────────┬──────────────────────────┬──────────────────────────────────────┐
///  │ type|flags │ Remaining Length (1..4 B)│ body: variable header + payload      │
///  └────────────┴──────────────────────────┴──────────────────────────────────────┘
///   TryReadFixedHeader ───────────────────►  DecodeBody(firstByte, body)
/// </code>
/// </summary>
public sealed partial class MqttPacketDecoder
{
    private readonly int _maxPacketSize;
    private string? _lastTopic; // the Topic Name of the last PUBLISH, reused while the next ones name the same topic

    public MqttPacketDecoder(int maxPacketSize)
    {
        if (maxPacketSize < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPacketSize), maxPacketSize, "must be at least 2 bytes");
        }

        _maxPacketSize = maxPacketSize;
    }

    /// <summary>Level used for the packet bodies; set from a successfully decoded CONNECT, V311 until then.</summary>
    public MqttProtocolVersion ProtocolVersion { get; set; } = MqttProtocolVersion.V311;

    public int MaxPacketSize => _maxPacketSize;

    /// <summary>
    /// Reads the fixed header (MQTT-v5.0 2.1.1). Returns false when <paramref name="data"/> is too short to hold it.
    /// Throws Malformed Packet when the Remaining Length continues past its fourth byte [MQTT-1.5.5-1].
    /// </summary>
    public static bool TryReadFixedHeader(
        ReadOnlySpan<byte> data, out byte firstByte, out int remainingLength, out int headerLength)
    {
        firstByte = 0;
        remainingLength = 0;
        headerLength = 0;
        if (data.IsEmpty)
        {
            return false;
        }

        var value = 0;
        var shift = 0;
        for (var i = 1; i <= 4; i++)
        {
            if (i >= data.Length)
            {
                return false;
            }

            var b = data[i];
            value |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                firstByte = data[0];
                remainingLength = value;
                headerLength = i + 1;
                return true;
            }

            shift += 7;
        }

        throw MqttProtocolException.Malformed("Remaining Length longer than 4 bytes [MQTT-1.5.5-1] (MQTT-v5.0 2.1.4)");
    }

    /// <summary>
    /// The checks that need only the first byte: packet type 0 is reserved, AUTH exists only in 5.0, and the flag
    /// bits are fixed for every type but PUBLISH [MQTT-2.2.2-1] [MQTT-2.2.2-2] (MQTT-v5.0 2.1.3, Table 2-2).
    /// </summary>
    public static void ValidateFirstByte(byte firstByte, MqttProtocolVersion version)
    {
        var type = (MqttPacketType)(firstByte >> 4);
        var flags = firstByte & 0x0F;
        switch (type)
        {
            case 0:
                throw MqttProtocolException.Malformed("packet type 0 is reserved (MQTT-v5.0 2.1.2)");
            case MqttPacketType.Auth when version != MqttProtocolVersion.V500:
                throw MqttProtocolException.Malformed("AUTH (type 15) is reserved before MQTT 5.0 (MQTT-3.1.1 2.2.1)");
            case MqttPacketType.Publish:
                return;
            case MqttPacketType.PubRel or MqttPacketType.Subscribe or MqttPacketType.Unsubscribe:
                if (flags != 0b0010)
                {
                    throw MqttProtocolException.Malformed(
                        $"{type} fixed-header flags must be 0010, got {Convert.ToString(flags, 2).PadLeft(4, '0')} [MQTT-2.2.2-1] [MQTT-2.2.2-2]");
                }

                return;
            default:
                if (flags != 0)
                {
                    throw MqttProtocolException.Malformed(
                        $"{type} fixed-header flags must be 0000, got {Convert.ToString(flags, 2).PadLeft(4, '0')} [MQTT-2.2.2-1] [MQTT-2.2.2-2]");
                }

                return;
        }
    }

    /// <summary>
    /// Throws Packet Too Large when the whole packet (fixed header included) would exceed the maximum packet size;
    /// called as soon as the fixed header is readable, so an oversized body is never buffered (MQTT-v5.0 3.1.2.11.4).
    /// </summary>
    public void EnsureSizeAllowed(int headerLength, int remainingLength)
    {
        if ((long)headerLength + remainingLength > _maxPacketSize)
        {
            throw new MqttProtocolException(
                MqttReasonCode.PacketTooLarge,
                $"packet of {(long)headerLength + remainingLength} bytes exceeds the maximum packet size {_maxPacketSize} (MQTT-v5.0 3.1.2.11.4)");
        }
    }

    /// <summary>
    /// Decodes one packet from the front of <paramref name="buffer"/>. Returns false and leaves the buffer untouched
    /// while the packet is incomplete; otherwise slices the buffer past the packet.
    /// </summary>
    public bool TryDecode(ref ReadOnlySequence<byte> buffer, out MqttPacket? packet)
    {
        packet = null;
        var first = buffer.FirstSpan;
        Span<byte> headerScratch = stackalloc byte[5];
        scoped ReadOnlySpan<byte> headerBytes;
        if (first.Length >= 5 || buffer.IsSingleSegment)
        {
            headerBytes = first;
        }
        else
        {
            var n = (int)Math.Min(5, buffer.Length);
            buffer.Slice(0, n).CopyTo(headerScratch);
            headerBytes = headerScratch[..n];
        }

        if (!TryReadFixedHeader(headerBytes, out var firstByte, out var remainingLength, out var headerLength))
        {
            return false;
        }

        ValidateFirstByte(firstByte, ProtocolVersion);
        EnsureSizeAllowed(headerLength, remainingLength);
        var total = headerLength + remainingLength;
        if (buffer.Length < total)
        {
            return false;
        }

        var frame = buffer.Slice(headerLength, remainingLength);
        if (frame.IsSingleSegment)
        {
            packet = DecodeBody(firstByte, frame.FirstSpan);
        }
        else
        {
            var rented = ArrayPool<byte>.Shared.Rent(remainingLength);
            try
            {
                frame.CopyTo(rented);
                packet = DecodeBody(firstByte, rented.AsSpan(0, remainingLength));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        buffer = buffer.Slice(total);
        return true;
    }

    /// <summary>
    /// Decodes the body (everything after the fixed header) of one packet whose first byte is
    /// <paramref name="firstByte"/>. A successful CONNECT switches <see cref="ProtocolVersion"/> to its level.
    /// </summary>
    public MqttPacket DecodeBody(byte firstByte, ReadOnlySpan<byte> body)
    {
        ValidateFirstByte(firstByte, ProtocolVersion);
        var reader = new MqttBufferReader(body);
        var v5 = ProtocolVersion == MqttProtocolVersion.V500;
        switch ((MqttPacketType)(firstByte >> 4))
        {
            case MqttPacketType.Connect:
                var connect = DecodeConnect(ref reader);
                ProtocolVersion = connect.ProtocolVersion;
                return connect;
            case MqttPacketType.ConnAck:
                return DecodeConnAck(ref reader, v5);
            case MqttPacketType.Publish:
                return DecodePublish(ref reader, firstByte, v5);
            case MqttPacketType.PubAck:
                return DecodePublishAck(ref reader, v5, new MqttPubAckPacket());
            case MqttPacketType.PubRec:
                return DecodePublishAck(ref reader, v5, new MqttPubRecPacket());
            case MqttPacketType.PubRel:
                return DecodePublishAck(ref reader, v5, new MqttPubRelPacket());
            case MqttPacketType.PubComp:
                return DecodePublishAck(ref reader, v5, new MqttPubCompPacket());
            case MqttPacketType.Subscribe:
                return DecodeSubscribe(ref reader, v5);
            case MqttPacketType.SubAck:
                return DecodeSubAck(ref reader, v5);
            case MqttPacketType.Unsubscribe:
                return DecodeUnsubscribe(ref reader, v5);
            case MqttPacketType.UnsubAck:
                return DecodeUnsubAck(ref reader, v5);
            case MqttPacketType.PingReq:
                reader.EnsureEnd("PINGREQ");
                return MqttPingReqPacket.Instance;
            case MqttPacketType.PingResp:
                reader.EnsureEnd("PINGRESP");
                return MqttPingRespPacket.Instance;
            case MqttPacketType.Disconnect:
                return DecodeDisconnect(ref reader, v5);
            default:
                return DecodeAuth(ref reader);
        }
    }

    /// <summary>
    /// Packet identifiers in PUBLISH (QoS &gt; 0), its acknowledgements, SUBSCRIBE and UNSUBSCRIBE are non-zero
    /// [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]).
    /// </summary>
    private static ushort ReadPacketId(ref MqttBufferReader reader, string packetName)
    {
        var id = reader.ReadUInt16();
        if (id == 0)
        {
            throw MqttProtocolException.ProtocolError($"{packetName} must carry a non-zero Packet Identifier [MQTT-2.2.1-3] [MQTT-2.3.1-1]");
        }

        return id;
    }
}
