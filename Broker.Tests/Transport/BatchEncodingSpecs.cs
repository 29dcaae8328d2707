using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Transport;
using DotNetty.Buffers;
using Xunit;

namespace Broker.Tests.Transport;

/// <summary>
/// A connection writes a burst of packets encoded into one buffer (<see cref="MqttEncoderHandler.EncodeBatch"/>): the
/// bytes on the wire must be exactly those of the packets encoded one by one, in order, at the channel's protocol level.
/// </summary>
public sealed class BatchEncodingSpecs
{
    private static readonly MqttPacket[] Burst =
    [
        new MqttPublishPacket { Topic = "a/b", Payload = new byte[] { 1, 2, 3 } },
        new MqttPublishPacket { Topic = "a/c", QoS = MqttQoS.AtLeastOnce, PacketId = 7, Payload = new byte[300] },
        new MqttPubAckPacket { PacketId = 9 },
        new MqttPublishPacket { Topic = "x", QoS = MqttQoS.ExactlyOnce, PacketId = 8, Dup = true, Payload = ReadOnlyMemory<byte>.Empty },
    ];

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public void A_batch_is_the_packets_encoded_one_after_the_other(MqttProtocolVersion version)
    {
        var state = new MqttCodecState { Version = version };
        var expected = Burst.SelectMany(p => MqttPacketEncoder.Encode(p, version)).ToArray();

        var buffer = MqttEncoderHandler.EncodeBatch(UnpooledByteBufferAllocator.Default, state, Burst.ToList());

        Assert.NotNull(buffer);
        try
        {
            var actual = new byte[buffer!.ReadableBytes];
            buffer.GetBytes(buffer.ReaderIndex, actual);
            Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(actual));
        }
        finally
        {
            buffer!.Release();
        }
    }

    [Fact]
    public void The_batch_is_encoded_at_the_channels_protocol_level()
    {
        var packet = new MqttPubAckPacket { PacketId = 3, ReasonCode = MqttReasonCode.NoMatchingSubscribers };
        var v311 = MqttEncoderHandler.EncodeBatch(UnpooledByteBufferAllocator.Default, new MqttCodecState { Version = MqttProtocolVersion.V311 }, [packet, packet])!;
        var v5 = MqttEncoderHandler.EncodeBatch(UnpooledByteBufferAllocator.Default, new MqttCodecState { Version = MqttProtocolVersion.V500 }, [packet, packet])!;

        Assert.Equal(2 * MqttPacketEncoder.GetSize(packet, MqttProtocolVersion.V311), v311.ReadableBytes);
        Assert.Equal(2 * MqttPacketEncoder.GetSize(packet, MqttProtocolVersion.V500), v5.ReadableBytes);
        Assert.NotEqual(v311.ReadableBytes, v5.ReadableBytes); // 3.1.1 has no reason code
        v311.Release();
        v5.Release();
    }
}
