using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using DotNetty.Buffers;
using DotNetty.Codecs;
using DotNetty.Transport.Channels;

namespace Broker.Transport;

/// <summary>
/// DotNetty adapter over <see cref="MqttPacketEncoder"/>: writes each outbound <see cref="MqttPacket"/> straight into
/// the output buffer at the channel's protocol level (<see cref="MqttCodecState.Version"/>). A client's pipeline has it
/// as the base of its last handler (<see cref="ClientChannelHandler"/>), not as a handler of its own: one handler
/// and its context less per connection.
/// </summary>
public class MqttEncoderHandler : MessageToByteEncoder<MqttPacket>
{
    private readonly MqttCodecState _state;

    /// <summary>The channel's codec state (its protocol level, read by every encode).</summary>
    protected MqttCodecState Codec => _state;

    public MqttEncoderHandler(MqttCodecState state)
    {
        _state = state;
    }

    protected override void Encode(IChannelHandlerContext context, MqttPacket message, IByteBuffer output) =>
        EncodeInto(_state, message, output);

    /// <summary>
    /// Several packets encoded one after the other into one pooled buffer, to be written as one: one buffer, one write
    /// and one completion instead of one each per packet (a subscriber's burst of publishes). Null when one of them
    /// cannot be encoded (nothing is written then; the caller writes them one by one through the pipeline, whose
    /// encoder reports the failure as it always did).
    /// </summary>
    public static IByteBuffer? EncodeBatch(IByteBufferAllocator allocator, MqttCodecState state, List<MqttPacket> packets)
    {
        var version = state.Version;
        var total = 0;
        foreach (var packet in packets)
        {
            total += MqttPacketEncoder.GetSize(packet, version);
        }

        var buffer = allocator.HeapBuffer(total);
        try
        {
            foreach (var packet in packets)
            {
                EncodeInto(state, packet, buffer);
            }

            return buffer;
        }
        catch (Exception)
        {
            buffer.Release();
            return null;
        }
    }

    private static void EncodeInto(MqttCodecState state, MqttPacket message, IByteBuffer output)
    {
        var version = state.Version;
        var size = MqttPacketEncoder.GetSize(message, version);
        state.Metrics?.BytesSent(size);
        output.EnsureWritable(size);
        if (output.HasArray)
        {
            var destination = new Span<byte>(output.Array, output.ArrayOffset + output.WriterIndex, size);
            var written = MqttPacketEncoder.Encode(message, version, destination);
            output.SetWriterIndex(output.WriterIndex + written);
        }
        else
        {
            output.WriteBytes(MqttPacketEncoder.Encode(message, version));
        }
    }
}
