using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Persistence.Serialization;

/// <summary>Reads what <see cref="BrokerBinaryWriter"/> wrote; bad input throws <see cref="FormatException"/>.</summary>
internal ref struct BrokerBinaryReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public BrokerBinaryReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    /// <summary>True when everything was read: a field added at the end of a type is absent in what older versions wrote.</summary>
    public readonly bool AtEnd => _position >= _data.Length;

    public byte Byte()
    {
        if (_position >= _data.Length)
        {
            throw new FormatException("Unexpected end of serialized data");
        }

        return _data[_position++];
    }

    public bool Bool() => Byte() != 0;

    public ulong VarUInt()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = Byte();
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw new FormatException("Variable-length integer too long");
    }

    public uint UInt() => checked((uint)VarUInt());

    public long Long()
    {
        var value = BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        return value;
    }

    public string? String()
    {
        var length = VarUInt();
        return length == 0 ? null : Encoding.UTF8.GetString(Take(checked((int)length - 1)));
    }

    public string RequiredString() => String() ?? throw new FormatException("Unexpected null string");

    public byte[] Bytes() => Take(checked((int)VarUInt())).ToArray();

    /// <summary>What <see cref="BrokerBinaryWriter.Bytes"/> wrote, in place (valid as long as the data read is).</summary>
    public ReadOnlySpan<byte> BytesInPlace() => Take(checked((int)VarUInt()));

    public ReadOnlyMemory<byte>? NullableBytes() => Bool() ? Bytes() : null;

    public uint? NullableUInt() => Bool() ? UInt() : null;

    public MqttMessageProperties Properties()
    {
        var flags = Byte();
        if (flags == 0)
        {
            return MqttMessageProperties.Empty;
        }

        return new MqttMessageProperties
        {
            PayloadFormatIndicator = (flags & 1) != 0 ? Byte() : null,
            MessageExpiryInterval = (flags & 2) != 0 ? UInt() : null,
            ContentType = (flags & 4) != 0 ? String() : null,
            ResponseTopic = (flags & 8) != 0 ? String() : null,
            CorrelationData = (flags & 16) != 0 ? Bytes() : null,
            UserProperties = (flags & 32) != 0 ? UserProperties() : ImmutableArray<MqttUserProperty>.Empty,
        };
    }

    public ImmutableArray<MqttUserProperty> UserProperties()
    {
        var count = checked((int)VarUInt());
        var builder = ImmutableArray.CreateBuilder<MqttUserProperty>(count);
        for (var i = 0; i < count; i++)
        {
            builder.Add(new MqttUserProperty(RequiredString(), RequiredString()));
        }

        return builder.MoveToImmutable();
    }

    public MqttApplicationMessage Message()
    {
        var topic = RequiredString();
        var payload = Bytes();
        var flags = Byte();
        var publisher = RequiredString();
        var expiresAt = Long();
        var properties = Properties();
        return new MqttApplicationMessage(topic, payload, (MqttQoS)(flags & 3), (flags & 4) != 0, properties, publisher, expiresAt);
    }

    /// <summary>An origin appended at the end of a type; absent (older writers, or none) reads as null.</summary>
    public MessageOrigin? TrailingOrigin() => AtEnd ? null : new MessageOrigin(Long(), Long(), Long());

    public MqttWill? Will()
    {
        if (!Bool())
        {
            return null;
        }

        var topic = RequiredString();
        var payload = Bytes();
        var flags = Byte();
        return new MqttWill
        {
            Topic = topic,
            Payload = payload,
            QoS = (MqttQoS)(flags & 3),
            Retain = (flags & 4) != 0,
            DelayInterval = UInt(),
            Properties = Properties(),
        };
    }

    public QueuedMessage Queued()
    {
        var message = Message();
        var flags = Byte();
        var count = checked((int)VarUInt());
        var ids = ImmutableArray.CreateBuilder<uint>(count);
        for (var i = 0; i < count; i++)
        {
            ids.Add(UInt());
        }

        return new QueuedMessage(message, (MqttQoS)(flags & 3), (flags & 4) != 0, ids.MoveToImmutable(), String());
    }

    public SubscriptionOptions Options()
    {
        var flags = Byte();
        return new SubscriptionOptions(
            (MqttQoS)(flags & 3), (flags & 4) != 0, (flags & 8) != 0, (MqttRetainHandling)((flags >> 4) & 3), UInt());
    }

    public MqttPacket Packet()
    {
        var size = checked((int)VarUInt());
        var frame = new ReadOnlySequence<byte>(Take(size).ToArray());
        var decoder = new MqttPacketDecoder(int.MaxValue) { ProtocolVersion = MqttProtocolVersion.V500 };
        if (!decoder.TryDecode(ref frame, out var packet) || packet is null)
        {
            throw new FormatException("Truncated MQTT packet in serialized data");
        }

        return packet;
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || _position + count > _data.Length)
        {
            throw new FormatException("Unexpected end of serialized data");
        }

        var span = _data.Slice(_position, count);
        _position += count;
        return span;
    }
}
