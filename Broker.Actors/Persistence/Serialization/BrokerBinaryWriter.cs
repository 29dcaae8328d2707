using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Persistence.Serialization;

/// <summary>
/// The primitive encodings of <see cref="BrokerSerializer"/>: little-endian fixed integers, variable-length
/// unsigned integers (7 bits a byte), length-prefixed UTF-8 strings where length 0 means null and n+1 means n bytes.
/// </summary>
internal sealed class BrokerBinaryWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new(256);

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>What was written so far (valid until the next write or <see cref="Clear"/>).</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    /// <summary>Forgets what was written, keeping the buffer.</summary>
    public void Clear() => _buffer.ResetWrittenCount();

    public void Byte(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    public void Bool(bool value) => Byte(value ? (byte)1 : (byte)0);

    public void VarUInt(ulong value)
    {
        while (value >= 0x80)
        {
            Byte((byte)(value | 0x80));
            value >>= 7;
        }

        Byte((byte)value);
    }

    public void Long(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    public void String(string? value)
    {
        if (value is null)
        {
            VarUInt(0);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        VarUInt((ulong)length + 1);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(length));
        _buffer.Advance(length);
    }

    public void Bytes(ReadOnlySpan<byte> value)
    {
        VarUInt((ulong)value.Length);
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
    }

    public void NullableBytes(ReadOnlyMemory<byte>? value)
    {
        Bool(value is not null);
        if (value is { } v)
        {
            Bytes(v.Span);
        }
    }

    public void NullableUInt(uint? value)
    {
        Bool(value is not null);
        if (value is { } v)
        {
            VarUInt(v);
        }
    }

    public void Properties(MqttMessageProperties p)
    {
        var flags = (byte)((p.PayloadFormatIndicator is null ? 0 : 1) | (p.MessageExpiryInterval is null ? 0 : 2) |
                           (p.ContentType is null ? 0 : 4) | (p.ResponseTopic is null ? 0 : 8) |
                           (p.CorrelationData is null ? 0 : 16) | (p.UserProperties.IsDefaultOrEmpty ? 0 : 32));
        Byte(flags);
        if (p.PayloadFormatIndicator is { } pfi)
        {
            Byte(pfi);
        }

        if (p.MessageExpiryInterval is { } mei)
        {
            VarUInt(mei);
        }

        if (p.ContentType is not null)
        {
            String(p.ContentType);
        }

        if (p.ResponseTopic is not null)
        {
            String(p.ResponseTopic);
        }

        if (p.CorrelationData is { } cd)
        {
            Bytes(cd.Span);
        }

        if (!p.UserProperties.IsDefaultOrEmpty)
        {
            UserProperties(p.UserProperties);
        }
    }

    public void UserProperties(ImmutableArray<MqttUserProperty> properties)
    {
        VarUInt((ulong)(properties.IsDefault ? 0 : properties.Length));
        foreach (var up in properties.IsDefault ? [] : properties)
        {
            String(up.Name);
            String(up.Value);
        }
    }

    public void Message(MqttApplicationMessage m)
    {
        String(m.Topic);
        Bytes(m.Payload.Span);
        Byte((byte)((byte)m.QoS | (m.Retain ? 4 : 0)));
        String(m.PublisherClientId);
        Long(m.ExpiresAtUnixMs);
        Properties(m.Properties);
    }

    /// <summary>
    /// An optional origin as the last field of a type: nothing at all when null, so a message without one is written
    /// exactly as before the field existed (and older readers, which stop before it, read either form).
    /// </summary>
    public void TrailingOrigin(MessageOrigin? origin)
    {
        if (origin is not null)
        {
            Long(origin.Stream);
            Long(origin.Seq);
            Long(origin.LowWater);
        }
    }

    public void Will(MqttWill? w)
    {
        Bool(w is not null);
        if (w is null)
        {
            return;
        }

        String(w.Topic);
        Bytes(w.Payload.Span);
        Byte((byte)((byte)w.QoS | (w.Retain ? 4 : 0)));
        VarUInt(w.DelayInterval);
        Properties(w.Properties);
    }

    public void Queued(QueuedMessage q)
    {
        Message(q.Message);
        Byte((byte)((byte)q.QoS | (q.Retain ? 4 : 0)));
        VarUInt((ulong)q.SubscriptionIdentifiers.Length);
        foreach (var id in q.SubscriptionIdentifiers)
        {
            VarUInt(id);
        }

        String(q.SharedFilter);
    }

    public void Options(SubscriptionOptions o)
    {
        Byte((byte)((byte)o.QoS | (o.NoLocal ? 4 : 0) | (o.RetainAsPublished ? 8 : 0) | ((byte)o.RetainHandling << 4)));
        VarUInt(o.SubscriptionIdentifier);
    }

    /// <summary>An MQTT packet travels as its own MQTT 5.0 wire encoding (a superset of 3.1.1's fields).</summary>
    public void Packet(MqttPacket packet)
    {
        var size = Protocol.Codec.MqttPacketEncoder.GetSize(packet, MqttProtocolVersion.V500);
        VarUInt((ulong)size);
        Protocol.Codec.MqttPacketEncoder.Encode(packet, MqttProtocolVersion.V500, _buffer.GetSpan(size));
        _buffer.Advance(size);
    }
}
