using System.Buffers.Binary;
using System.Text;

namespace Broker.Protocol.Codec;

/// <summary>
/// A forward-only writer for the MQTT data representations. Created with <see cref="Measure"/> it writes nothing and
/// only counts, so one body-writing routine serves both <c>GetSize</c> and <c>Encode</c> and the two cannot drift.
/// </summary>
internal ref struct MqttBufferWriter
{
    /// <summary>Largest Variable Byte Integer, and so the largest Remaining Length (MQTT-v5.0 1.5.5).</summary>
    public const int MaxVariableByteInteger = 268_435_455;

    private readonly Span<byte> _destination;
    private readonly bool _measureOnly;
    private int _position;

    public MqttBufferWriter(Span<byte> destination)
    {
        _destination = destination;
        _measureOnly = false;
        _position = 0;
    }

    private MqttBufferWriter(bool measureOnly)
    {
        _destination = default;
        _measureOnly = measureOnly;
        _position = 0;
    }

    public static MqttBufferWriter Measure() => new(measureOnly: true);

    public readonly int Position => _position;

    public void WriteByte(byte value)
    {
        if (!_measureOnly)
        {
            _destination[_position] = value;
        }

        _position++;
    }

    public void WriteUInt16(ushort value)
    {
        if (!_measureOnly)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_destination[_position..], value);
        }

        _position += 2;
    }

    public void WriteUInt32(uint value)
    {
        if (!_measureOnly)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_destination[_position..], value);
        }

        _position += 4;
    }

    public void WriteVariableByteInteger(uint value)
    {
        if (value > MaxVariableByteInteger)
        {
            throw MqttProtocolException.Malformed($"{value} does not fit a Variable Byte Integer (MQTT-v5.0 1.5.5)");
        }

        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            if (value > 0)
            {
                b |= 0x80;
            }

            WriteByte(b);
        }
        while (value > 0);
    }

    /// <summary>A UTF-8 Encoded String: two-byte length then the bytes (MQTT-v5.0 1.5.4).</summary>
    public void WriteString(string value)
    {
        int length;
        try
        {
            if (_measureOnly)
            {
                length = MqttBufferReader.StrictUtf8.GetByteCount(value);
            }
            else
            {
                length = MqttBufferReader.StrictUtf8.GetBytes(value, _destination[(_position + 2)..]);
            }
        }
        catch (EncoderFallbackException)
        {
            throw MqttProtocolException.Malformed("string holds an unpaired surrogate and is not valid UTF-8 [MQTT-1.5.4-1]");
        }

        if (length > ushort.MaxValue)
        {
            throw MqttProtocolException.Malformed($"string of {length} UTF-8 bytes exceeds 65,535 (MQTT-v5.0 1.5.4)");
        }

        WriteUInt16((ushort)length);
        _position += length;
    }

    /// <summary>Binary Data: two-byte length then the bytes (MQTT-v5.0 1.5.6).</summary>
    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue)
        {
            throw MqttProtocolException.Malformed($"binary data of {value.Length} bytes exceeds 65,535 (MQTT-v5.0 1.5.6)");
        }

        WriteUInt16((ushort)value.Length);
        WriteBytes(value);
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        if (!_measureOnly)
        {
            value.CopyTo(_destination[_position..]);
        }

        _position += value.Length;
    }

    public static int VariableByteIntegerSize(int value) =>
        value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}
