using System.Buffers;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using FsCheck.Xunit;
using Xunit;

namespace Broker.Tests.Protocol;

/// <summary>
/// FsCheck properties over random valid packets of every type for 3.1.1 and 5.0: encoding then decoding is the
/// identity, any fragmentation reassembles, and mutated frames (bit flips, inserted or deleted bytes, truncation,
/// overwritten bytes) end either in a packet or in <see cref="MqttProtocolException"/>, never in another exception
/// and never in a hang. 5 × 20,000 cases plus 5,000 of raw random bytes.
/// </summary>
public sealed class MqttCodecPropertySpecs
{
    private const int Cases = 20_000;

    [Property(MaxTest = Cases, Arbitrary = [typeof(MqttArbitraries)])]
    public void Encode_then_decode_should_be_the_identity(PacketCase c) =>
        CodecTestKit.AssertRoundTrip(c.Packet, c.Version);

    [Property(MaxTest = Cases, Arbitrary = [typeof(MqttArbitraries)])]
    public void Frames_cut_at_random_points_should_reassemble_into_the_same_packets(MutationCase m)
    {
        var frame = MqttPacketEncoder.Encode(m.Case.Packet, m.Case.Version);
        var ping = MqttPacketEncoder.Encode(MqttPingReqPacket.Instance, m.Case.Version);
        byte[] stream = [.. frame, .. ping, .. frame];
        var random = new Random(m.Seed);
        var decoder = new MqttPacketDecoder(CodecTestKit.MaxPacketSize) { ProtocolVersion = m.Case.Version };
        var decoded = new List<MqttPacket>();
        var pending = Array.Empty<byte>();
        var offset = 0;
        while (offset < stream.Length)
        {
            var take = Math.Min(stream.Length - offset, random.Next(1, 12));
            pending = [.. pending, .. stream.AsSpan(offset, take)];
            offset += take;
            var buffer = MqttFramingSpecs.Segmented(pending, random.Next(1, 8));
            while (decoder.TryDecode(ref buffer, out var packet))
            {
                decoded.Add(packet!);
            }

            pending = buffer.ToArray();
        }

        Assert.Empty(pending);
        Assert.Equal(3, decoded.Count);
        var expected = Convert.ToHexString(frame);
        Assert.Equal(expected, Convert.ToHexString(MqttPacketEncoder.Encode(decoded[0], m.Case.Version)));
        Assert.IsType<MqttPingReqPacket>(decoded[1]);
        Assert.Equal(expected, Convert.ToHexString(MqttPacketEncoder.Encode(decoded[2], m.Case.Version)));
    }

    [Property(MaxTest = Cases, Arbitrary = [typeof(MqttArbitraries)])]
    public void Flipped_bits_should_only_ever_raise_protocol_exceptions(MutationCase m)
    {
        var random = new Random(m.Seed);
        var bytes = MqttPacketEncoder.Encode(m.Case.Packet, m.Case.Version);
        var flips = random.Next(1, 4);
        for (var i = 0; i < flips; i++)
        {
            bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
        }

        DecodeSurvives(bytes, m.Case.Version);
    }

    [Property(MaxTest = Cases, Arbitrary = [typeof(MqttArbitraries)])]
    public void Inserted_or_deleted_bytes_should_only_ever_raise_protocol_exceptions(MutationCase m)
    {
        var random = new Random(m.Seed);
        var bytes = new List<byte>(MqttPacketEncoder.Encode(m.Case.Packet, m.Case.Version));
        var edits = random.Next(1, 4);
        for (var i = 0; i < edits; i++)
        {
            if (random.Next(2) == 0 || bytes.Count < 2)
            {
                bytes.Insert(random.Next(bytes.Count + 1), (byte)random.Next(256));
            }
            else
            {
                bytes.RemoveAt(random.Next(bytes.Count));
            }
        }

        DecodeSurvives([.. bytes], m.Case.Version);
    }

    [Property(MaxTest = Cases, Arbitrary = [typeof(MqttArbitraries)])]
    public void Truncated_or_overwritten_frames_should_only_ever_raise_protocol_exceptions(MutationCase m)
    {
        var random = new Random(m.Seed);
        var bytes = MqttPacketEncoder.Encode(m.Case.Packet, m.Case.Version);
        switch (random.Next(3))
        {
            case 0: // truncate, keeping the announced Remaining Length (decode the body as if complete)
                bytes = bytes[..random.Next(1, bytes.Length + 1)];
                break;
            case 1: // overwrite a run with random bytes
                var start = random.Next(bytes.Length);
                var length = random.Next(1, Math.Min(8, bytes.Length - start) + 1);
                random.NextBytes(bytes.AsSpan(start, length));
                break;
            default: // overwrite one byte with a boundary value
                bytes[random.Next(bytes.Length)] = (byte)(random.Next(2) == 0 ? 0x00 : 0xFF);
                break;
        }

        DecodeSurvives(bytes, m.Case.Version);
    }

    [Property(MaxTest = 5_000)]
    public void Random_bytes_should_only_ever_raise_protocol_exceptions(byte[] bytes, bool v5) =>
        DecodeSurvives(bytes ?? [], v5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311);

    /// <summary>
    /// Runs the bytes through the framing path (TryDecode until it stops) and, bypassing framing, through DecodeBody
    /// with whatever follows the original header; both may only end normally or in <see cref="MqttProtocolException"/>.
    /// </summary>
    private static void DecodeSurvives(byte[] bytes, MqttProtocolVersion version)
    {
        var decoder = new MqttPacketDecoder(CodecTestKit.MaxPacketSize) { ProtocolVersion = version };
        try
        {
            var buffer = new ReadOnlySequence<byte>(bytes);
            while (buffer.Length > 0 && decoder.TryDecode(ref buffer, out _))
            {
            }
        }
        catch (MqttProtocolException)
        {
        }

        if (bytes.Length == 0)
        {
            return;
        }

        var body = bytes.AsSpan(1);
        var skip = 0;
        while (skip < body.Length && skip < 4 && (body[skip] & 0x80) != 0)
        {
            skip++;
        }

        body = body[Math.Min(skip + 1, body.Length)..];
        try
        {
            new MqttPacketDecoder(CodecTestKit.MaxPacketSize) { ProtocolVersion = version }.DecodeBody(bytes[0], body);
        }
        catch (MqttProtocolException)
        {
        }
    }
}
