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

    protected override void Encode(IChannelHandlerContext context, MqttPacket message, IByteBuffer output)
    {
        var version = _state.Version;
        var size = MqttPacketEncoder.GetSize(message, version);
        _state.Metrics?.BytesSent(size);
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
