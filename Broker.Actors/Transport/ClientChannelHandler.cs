using Akka.Event;
using Akka.Actor;
using Broker.Cluster;
using Broker.Sessions;
using DotNetty.Transport.Channels;

namespace Broker.Transport;

/// <summary>
/// The last handler of a client's pipeline: it creates the connection's <see cref="ClientConnectionActor"/> when the
/// channel becomes active and hands it every decoded packet (immutable records, no pooled buffers) by Tell. Outbound,
/// it is the pipeline's encoder too (its base, <see cref="MqttEncoderHandler"/>): the connection's packets are written
/// from the tail, so this is where they become bytes.
/// </summary>
public sealed class ClientChannelHandler : MqttEncoderHandler
{
    private readonly ActorSystem _system;
    private readonly BrokerContext _context;
    private IActorRef _connection = ActorRefs.Nobody;

    public ClientChannelHandler(ActorSystem system, BrokerContext context, MqttCodecState codec)
        : base(codec)
    {
        _system = system;
        _context = context;
        codec.Metrics = context.Metrics;
    }

    public override void ChannelActive(IChannelHandlerContext ctx)
    {
        _connection = _context.ConnectionParents.Create(_system, ClientConnectionActor.Props(ctx.Channel, Codec, _context));
        base.ChannelActive(ctx);
    }

    public override void ChannelRead(IChannelHandlerContext ctx, object message)
    {
        if (message is Protocol.Packets.MqttPacket or MqttDecodeError
            && Interlocked.Increment(ref Codec.PendingPackets) >= MqttCodecState.BacklogHigh && !Codec.PausedByBacklog)
        {
            Codec.PausedByBacklog = true;
            Codec.ApplyAutoRead(ctx.Channel);
        }

        _connection.Tell(message);
    }

    public override void ChannelInactive(IChannelHandlerContext ctx)
    {
        _connection.Tell(ClientConnectionActor.ChannelClosed.Instance);
        base.ChannelInactive(ctx);
    }

    public override void UserEventTriggered(IChannelHandlerContext ctx, object evt)
    {
        if (evt is DotNetty.Handlers.Tls.TlsHandshakeCompletionEvent { IsSuccessful: false } failed)
        {
            // A client with the wrong CA, no certificate where one is required, or plain MQTT on the TLS port.
            Akka.Event.Logging.GetLogger(_system, typeof(ClientChannelHandler)).Warning("Connection {0}: TLS handshake failed: {1}", ctx.Channel.RemoteAddress,
                failed.Exception?.GetBaseException().Message ?? "?");
        }

        base.UserEventTriggered(ctx, evt);
    }

    public override void ExceptionCaught(IChannelHandlerContext ctx, Exception exception)
    {
        // Socket errors (reset by peer and the like) end this connection only.
        Akka.Event.Logging.GetLogger(_system, typeof(ClientChannelHandler)).Debug("Connection {0}: {1}", ctx.Channel.RemoteAddress, exception.Message);
        ctx.CloseAsync();
    }
}
