using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using DotNetty.Buffers;
using DotNetty.Codecs;
using DotNetty.Transport.Channels;

namespace Broker.Transport;

/// <summary>
/// DotNetty adapter over <see cref="MqttPacketDecoder"/>: frames packets out of the channel's cumulated bytes and
/// passes immutable <see cref="MqttPacket"/> records (never the pooled <see cref="IByteBuffer"/>) downstream. It owns
/// only framing on DotNetty buffers; every wire rule lives in the codec. A packet larger than the maximum size is
/// refused from its fixed header, before its body is buffered. After the first <see cref="MqttProtocolException"/>
/// it emits one <see cref="MqttDecodeError"/> and then drops all further input of the channel.
/// </summary>
public sealed class MqttDecoderHandler : ByteToMessageDecoder
{
    private readonly MqttCodecState _state;
    private readonly MqttPacketDecoder _decoder;
    private bool _failed;

    public MqttDecoderHandler(MqttCodecState state, int maxPacketSize)
    {
        _state = state;
        _decoder = new MqttPacketDecoder(maxPacketSize);
    }

    protected override void Decode(IChannelHandlerContext context, IByteBuffer input, List<object> output)
    {
        if (_failed)
        {
            input.SkipBytes(input.ReadableBytes);
            return;
        }

        try
        {
            if (TryDecodeOne(input, out var packet))
            {
                output.Add(packet);
            }
        }
        catch (MqttProtocolException error)
        {
            _failed = true;
            input.SkipBytes(input.ReadableBytes);
            output.Add(new MqttDecodeError(error));
        }
    }

    private bool TryDecodeOne(IByteBuffer input, out MqttPacket packet)
    {
        packet = null!;
        var readable = input.ReadableBytes;
        var readerIndex = input.ReaderIndex;
        Span<byte> header = stackalloc byte[5];
        var headerAvailable = Math.Min(5, readable);
        for (var i = 0; i < headerAvailable; i++)
        {
            header[i] = input.GetByte(readerIndex + i);
        }

        if (!MqttPacketDecoder.TryReadFixedHeader(
                header[..headerAvailable], out var firstByte, out var remainingLength, out var headerLength))
        {
            return false;
        }

        _decoder.ProtocolVersion = _state.Version;
        MqttPacketDecoder.ValidateFirstByte(firstByte, _decoder.ProtocolVersion);
        _decoder.EnsureSizeAllowed(headerLength, remainingLength);
        var total = headerLength + remainingLength;
        if (readable < total)
        {
            return false;
        }

        ReadOnlySpan<byte> body;
        if (input.HasArray)
        {
            body = new ReadOnlySpan<byte>(input.Array, input.ArrayOffset + readerIndex + headerLength, remainingLength);
        }
        else
        {
            var copy = new byte[remainingLength];
            input.GetBytes(readerIndex + headerLength, copy, 0, remainingLength);
            body = copy;
        }

        packet = _decoder.DecodeBody(firstByte, body);
        input.SkipBytes(total);
        _state.Metrics?.BytesReceived(total);
        if (packet is MqttConnectPacket connect)
        {
            _state.Version = connect.ProtocolVersion;
        }

        return true;
    }
}
