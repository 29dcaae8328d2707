using System.Buffers;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Transport;
using DotNetty.Buffers;
using DotNetty.Transport.Channels.Embedded;
using Xunit;
using static Broker.Tests.Protocol.CodecTestKit;

namespace Broker.Tests.Protocol;

/// <summary>
/// Incremental decoding: frames arriving a byte at a time, split across segments, and several per buffer; both
/// through <see cref="MqttPacketDecoder.TryDecode"/> and through the DotNetty <see cref="MqttDecoderHandler"/>.
/// </summary>
public sealed class MqttFramingSpecs
{
    private static readonly MqttPacket[] Stream =
    [
        new MqttConnectPacket { ProtocolVersion = MqttProtocolVersion.V500, ClientId = "framing" },
        new MqttPublishPacket { Topic = "a/b", Payload = new byte[300], QoS = MqttQoS.AtLeastOnce, PacketId = 1 },
        new MqttSubscribePacket { PacketId = 2, Subscriptions = [new MqttTopicSubscription { TopicFilter = "x/#" }] },
        MqttPingReqPacket.Instance,
        new MqttPubAckPacket { PacketId = 1, ReasonCode = MqttReasonCode.NoMatchingSubscribers },
        MqttDisconnectPacket.Normal,
    ];

    private static byte[] StreamBytes()
    {
        var all = new List<byte>();
        foreach (var packet in Stream)
        {
            all.AddRange(MqttPacketEncoder.Encode(packet, MqttProtocolVersion.V500));
        }

        return all.ToArray();
    }

    [Fact]
    public void Decoder_should_reassemble_packets_fed_one_byte_at_a_time()
    {
        var decoder = NewDecoder(MqttProtocolVersion.V311);
        var bytes = StreamBytes();
        var pending = new List<byte>();
        var decoded = new List<MqttPacket>();
        foreach (var b in bytes)
        {
            pending.Add(b);
            var buffer = new ReadOnlySequence<byte>(pending.ToArray());
            while (true)
            {
                var before = buffer.Length;
                if (!decoder.TryDecode(ref buffer, out var packet))
                {
                    Assert.Equal(before, buffer.Length); // nothing consumed while incomplete
                    break;
                }

                decoded.Add(packet!);
            }

            pending = [.. buffer.ToArray()];
        }

        Assert.Empty(pending);
        AssertSameStream(decoded);
    }

    [Fact]
    public void Decoder_should_decode_many_packets_from_one_buffer()
    {
        var decoder = NewDecoder(MqttProtocolVersion.V311);
        var buffer = new ReadOnlySequence<byte>(StreamBytes());
        var decoded = new List<MqttPacket>();
        while (decoder.TryDecode(ref buffer, out var packet))
        {
            decoded.Add(packet!);
        }

        Assert.Equal(0, buffer.Length);
        AssertSameStream(decoded);
    }

    [Fact]
    public void Decoder_should_decode_packets_spread_over_one_byte_segments()
    {
        var decoder = NewDecoder(MqttProtocolVersion.V311);
        var buffer = Segmented(StreamBytes(), segmentSize: 1);
        var decoded = new List<MqttPacket>();
        while (decoder.TryDecode(ref buffer, out var packet))
        {
            decoded.Add(packet!);
        }

        Assert.Equal(0, buffer.Length);
        AssertSameStream(decoded);
    }

    [Fact]
    public void Handler_should_decode_frames_split_at_every_byte()
    {
        var state = new MqttCodecState();
        var channel = new EmbeddedChannel(new MqttDecoderHandler(state, MaxPacketSize));
        foreach (var b in StreamBytes())
        {
            channel.WriteInbound(Unpooled.WrappedBuffer([b]));
        }

        AssertSameStream(ReadAll(channel));
        Assert.Equal(MqttProtocolVersion.V500, state.Version);
        Assert.False(channel.Finish());
    }

    [Fact]
    public void Handler_should_decode_many_frames_from_one_buffer_and_a_frame_split_in_two()
    {
        var state = new MqttCodecState();
        var channel = new EmbeddedChannel(new MqttDecoderHandler(state, MaxPacketSize));
        var bytes = StreamBytes();
        var cut = bytes.Length / 2 + 3;
        channel.WriteInbound(Unpooled.WrappedBuffer(bytes, 0, cut));
        channel.WriteInbound(Unpooled.WrappedBuffer(bytes, cut, bytes.Length - cut));
        AssertSameStream(ReadAll(channel));
    }

    [Fact]
    public void Handler_should_emit_one_decode_error_after_garbage_and_then_discard_input()
    {
        var channel = new EmbeddedChannel(new MqttDecoderHandler(new MqttCodecState(), MaxPacketSize));
        var ping = MqttPacketEncoder.Encode(MqttPingReqPacket.Instance, MqttProtocolVersion.V311);
        channel.WriteInbound(Unpooled.WrappedBuffer([.. ping, 0x00, 0x00, .. ping]));
        channel.WriteInbound(Unpooled.WrappedBuffer(ping));
        var outputs = ReadAll(channel);
        Assert.Equal(2, outputs.Count);
        Assert.IsType<MqttPingReqPacket>(outputs[0]);
        var error = Assert.IsType<MqttDecodeError>(outputs[1]);
        Assert.Equal(MqttReasonCode.MalformedPacket, error.Error.ReasonCode);
    }

    [Fact]
    public void Handler_should_refuse_an_oversized_packet_before_its_body_arrives()
    {
        var channel = new EmbeddedChannel(new MqttDecoderHandler(new MqttCodecState(), maxPacketSize: 128));
        channel.WriteInbound(Unpooled.WrappedBuffer(Hex("30 FF 7F")));
        var error = Assert.IsType<MqttDecodeError>(Assert.Single(ReadAll(channel)));
        Assert.Equal(MqttReasonCode.PacketTooLarge, error.Error.ReasonCode);
    }

    [Theory]
    [MemberData(nameof(MalformedFrameSpecs.Frames), MemberType = typeof(MalformedFrameSpecs))]
    public void Handler_should_report_the_same_reason_code_as_the_codec_for_bad_frames(
        string rule, MqttProtocolVersion version, string hex, MqttReasonCode expected)
    {
        var channel = new EmbeddedChannel(new MqttDecoderHandler(new MqttCodecState { Version = version }, MaxPacketSize));
        channel.WriteInbound(Unpooled.WrappedBuffer(Hex(hex)));
        var error = Assert.IsType<MqttDecodeError>(Assert.Single(ReadAll(channel)));
        Assert.True(expected == error.Error.ReasonCode, $"{rule}: expected {expected}, got {error.Error.ReasonCode}");
    }

    [Fact]
    public void Handler_should_copy_out_of_buffers_without_a_backing_array()
    {
        // A composite of two components has no single backing array (HasArray is false).
        var bytes = StreamBytes();
        var composite = Unpooled.CompositeBuffer();
        composite.AddComponents(true, Unpooled.WrappedBuffer(bytes, 0, 7), Unpooled.WrappedBuffer(bytes, 7, bytes.Length - 7));
        Assert.False(composite.HasArray);
        var channel = new EmbeddedChannel(new MqttDecoderHandler(new MqttCodecState(), MaxPacketSize));
        channel.WriteInbound(composite);
        AssertSameStream(ReadAll(channel));
    }

    [Fact]
    public void Encoder_handler_should_write_the_codec_bytes_at_the_channel_version()
    {
        var state = new MqttCodecState { Version = MqttProtocolVersion.V500 };
        var channel = new EmbeddedChannel(new MqttEncoderHandler(state));
        var ack = new MqttPubAckPacket { PacketId = 9, ReasonCode = MqttReasonCode.QuotaExceeded, ReasonString = "slow" };
        Assert.True(channel.WriteOutbound(ack));
        var output = channel.ReadOutbound<IByteBuffer>();
        var bytes = new byte[output.ReadableBytes];
        output.ReadBytes(bytes);
        output.Release();
        Assert.Equal(MqttPacketEncoder.Encode(ack, MqttProtocolVersion.V500), bytes);
    }

    [Fact]
    public void Encoder_and_decoder_handlers_should_round_trip_through_a_channel()
    {
        var state = new MqttCodecState { Version = MqttProtocolVersion.V500 };
        var sender = new EmbeddedChannel(new MqttEncoderHandler(state));
        var receiver = new EmbeddedChannel(new MqttDecoderHandler(new MqttCodecState { Version = MqttProtocolVersion.V500 }, MaxPacketSize));
        foreach (var packet in Stream)
        {
            sender.WriteOutbound(packet);
            receiver.WriteInbound(sender.ReadOutbound<IByteBuffer>());
        }

        AssertSameStream(ReadAll(receiver));
    }

    private static List<object> ReadAll(EmbeddedChannel channel)
    {
        var result = new List<object>();
        while (channel.ReadInbound<object>() is { } message)
        {
            result.Add(message);
        }

        return result;
    }

    private static void AssertSameStream(IReadOnlyList<object> decoded)
    {
        Assert.Equal(Stream.Length, decoded.Count);
        for (var i = 0; i < Stream.Length; i++)
        {
            var packet = Assert.IsAssignableFrom<MqttPacket>(decoded[i]);
            Assert.Equal(
                Convert.ToHexString(MqttPacketEncoder.Encode(Stream[i], MqttProtocolVersion.V500)),
                Convert.ToHexString(MqttPacketEncoder.Encode(packet, MqttProtocolVersion.V500)));
        }
    }

    internal static ReadOnlySequence<byte> Segmented(byte[] bytes, int segmentSize)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(bytes.AsMemory(0, Math.Min(segmentSize, bytes.Length)), 0);
        var last = first;
        for (var offset = segmentSize; offset < bytes.Length; offset += segmentSize)
        {
            last = last.Append(bytes.AsMemory(offset, Math.Min(segmentSize, bytes.Length - offset)));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
