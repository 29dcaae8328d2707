using System.Buffers.Binary;
using System.Text;

namespace Broker.Protocol.Codec;

/// <summary>
/// A forward-only reader over one packet's bytes. It owns the MQTT data representations of MQTT-v5.0 1.5 (two and
/// four byte integers, variable byte integers, UTF-8 strings, binary data) and turns every overrun into
/// <see cref="MqttProtocolException"/> with Malformed Packet, so callers never see IndexOutOfRange.
/// </summary>
internal ref struct MqttBufferReader
{
    /// <summary>Strict UTF-8: throws on ill-formed sequences and encoded surrogates [MQTT-1.5.3-1].</summary>
    internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public MqttBufferReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly int Remaining => _data.Length - _position;

    public readonly bool IsEnd => _position >= _data.Length;

    public byte ReadByte()
    {
        if (_position >= _data.Length)
        {
            throw Overrun(1);
        }

        return _data[_position++];
    }

    public ushort ReadUInt16()
    {
        var span = Take(2);
        return BinaryPrimitives.ReadUInt16BigEndian(span);
    }

    public uint ReadUInt32()
    {
        var span = Take(4);
        return BinaryPrimitives.ReadUInt32BigEndian(span);
    }

    /// <summary>Variable Byte Integer (MQTT-v5.0 1.5.5): at most four bytes [MQTT-1.5.5-1].</summary>
    public uint ReadVariableByteInteger()
    {
        uint value = 0;
        var shift = 0;
        for (var i = 0; i < 4; i++)
        {
            var b = ReadByte();
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }

            shift += 7;
        }

        throw MqttProtocolException.Malformed("Variable Byte Integer longer than 4 bytes [MQTT-1.5.5-1]");
    }

    /// <summary>
    /// UTF-8 Encoded String (MQTT-v5.0 1.5.4): well-formed UTF-8 [MQTT-1.5.4-1] without U+0000 [MQTT-1.5.4-2]
    /// (3.1.1: [MQTT-1.5.3-1], [MQTT-1.5.3-2]).
    /// </summary>
    public string ReadString() => ReadString(previous: null);

    /// <summary>
    /// <see cref="ReadString"/>, returning <paramref name="previous"/> itself when the bytes spell it in ASCII (a
    /// client that publishes to one topic again and again then costs no new string per packet). Other strings are
    /// decoded and checked as <see cref="ReadString"/> does; <paramref name="previous"/> passed those checks when it
    /// was read.
    /// </summary>
    public string ReadString(string? previous)
    {
        var length = ReadUInt16();
        var bytes = Take(length);
        return previous is not null && previous.Length == bytes.Length && System.Text.Ascii.Equals(bytes, previous)
            ? previous
            : DecodeUtf8(bytes);
    }

    /// <summary>Binary Data (MQTT-v5.0 1.5.6), copied into a new array.</summary>
    public byte[] ReadBinary()
    {
        var length = ReadUInt16();
        return Take(length).ToArray();
    }

    /// <summary>Copies everything that is left (a PUBLISH payload) into a new array.</summary>
    public byte[] ReadRemainingBytes()
    {
        var rest = _data[_position..];
        _position = _data.Length;
        return rest.IsEmpty ? [] : rest.ToArray();
    }

    /// <summary>Takes the next <paramref name="length"/> bytes as a sub-reader (the v5 property block).</summary>
    public MqttBufferReader ReadSubReader(int length) => new(Take(length));

    /// <summary>Throws Malformed Packet if bytes are left where the format says the packet ends.</summary>
    public readonly void EnsureEnd(string packetName)
    {
        if (_position != _data.Length)
        {
            throw MqttProtocolException.Malformed(
                $"{packetName}: {_data.Length - _position} unexpected trailing byte(s) after the last field");
        }
    }

    internal static string DecodeUtf8(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return string.Empty;
        }

        if (bytes.IndexOf((byte)0) >= 0)
        {
            throw MqttProtocolException.Malformed("UTF-8 string contains U+0000 [MQTT-1.5.4-2] [MQTT-1.5.3-2]");
        }

        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw MqttProtocolException.Malformed("ill-formed UTF-8 string [MQTT-1.5.4-1] [MQTT-1.5.3-1]");
        }
    }

    private ReadOnlySpan<byte> Take(int length)
    {
        if (length > _data.Length - _position)
        {
            throw Overrun(length);
        }

        var span = _data.Slice(_position, length);
        _position += length;
        return span;
    }

    private readonly MqttProtocolException Overrun(int wanted) =>
        MqttProtocolException.Malformed(
            $"field of {wanted} byte(s) runs past the end of the packet ({_data.Length - _position} left)");
}
