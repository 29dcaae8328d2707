using System.Net;
using Akka.Actor;
using Akka.Event;
using Broker.Cluster;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Transport;
using DotNetty.Transport.Channels;

namespace Broker.Sessions;

/// <summary>
/// One actor per TCP connection: the socket side of a client. It receives decoded packets from the DotNetty channel
/// (<see cref="ClientChannelHandler"/>), enforces the connection-level rules (CONNECT first and once, keep alive,
/// topic aliases, receive maximum), sends publishes to the topic entities and everything stateful to the client's
/// <see cref="SessionEntity"/>, and writes what the session decides to send, flushing once per mailbox batch.
/// <code>
///   AwaitingConnect ──CONNECT──► Attaching ──SessionAttached──► Connected ──DISCONNECT/close/error──► stopped
/// </code>
/// </summary>
public sealed partial class ClientConnectionActor : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    private readonly IChannel _channel;
    private readonly MqttCodecState _codec;
    private readonly BrokerContext _context;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _remote;

    private const int MaxBatch = 256;
    private static readonly TimeSpan AttachRetryInterval = TimeSpan.FromSeconds(2);
    private List<MqttPacket> _pendingWrites = new();
    private bool _flushScheduled;
    private bool _closing;
    private bool _countedConnection;

    private MqttConnectPacket? _connect;
    private string _clientId = "";
    private MqttProtocolVersion _version = MqttProtocolVersion.V311;
    private IActorRef? _session;
    private AttachSession? _attachRequest;
    private long _lastPacketTicks = Environment.TickCount64;
    private int _keepAliveSeconds;

    public ClientConnectionActor(IChannel channel, MqttCodecState codec, BrokerContext context)
    {
        _channel = channel;
        _codec = codec;
        _context = context;
        // DotNetty's dual-mode sockets report IPv4 peers as ::ffff:a.b.c.d; logs and the management API show a.b.c.d.
        _remote = channel.RemoteAddress is IPEndPoint { Address.IsIPv4MappedToIPv6: true } mapped
            ? new IPEndPoint(mapped.Address.MapToIPv4(), mapped.Port).ToString()
            : channel.RemoteAddress?.ToString() ?? "?";
        AwaitingConnect();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IChannel channel, MqttCodecState codec, BrokerContext context) =>
        Akka.Actor.Props.Create(() => new ClientConnectionActor(channel, codec, context));

    private bool IsV5 => _version == MqttProtocolVersion.V500;

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(ServerShuttingDown));
        Timers.StartSingleTimer(ConnectTimeout.Instance, ConnectTimeout.Instance,
            TimeSpan.FromSeconds(_context.Options.Mqtt.ConnectTimeout));
    }

    protected override void PostStop()
    {
        CountDisconnect();
        if (_countedConnection)
        {
            _context.Metrics.CloseConnection();
        }

        if (_channel.Active)
        {
            _channel.CloseAsync();
        }
    }

    private void AwaitingConnect()
    {
        Receive<MqttConnectPacket>(HandleConnect);
        Receive<MqttDecodeError>(e => ProtocolViolation(e.Error.ReasonCode, e.Error.Message));
        Receive<MqttPacket>(p =>
        {
            // [MQTT-3.1.0-1] the first packet must be CONNECT; close without CONNACK.
            Warn("sent {0} before CONNECT", p.Type);
            CloseNow();
        });
        Receive<ConnectTimeout>(_ =>
        {
            Warn("sent no CONNECT within {0} s", _context.Options.Mqtt.ConnectTimeout);
            CloseNow();
        });
        CommonReceives();
    }

    private void Attaching()
    {
        Receive<SessionAttached>(HandleAttached);
        Receive<AttachRetry>(_ => RetryAttach());
        Receive<AttachTimeout>(_ =>
        {
            _log.Warning("Client {ClientId} ({Address}): session did not answer; refusing the connection", _clientId, _remote);
            RefuseConnect(MqttReasonCode.ServerUnavailable, MqttConnectReturnCode.ServerUnavailable);
        });
        Receive<MqttDecodeError>(e => ProtocolViolation(e.Error.ReasonCode, e.Error.Message));
        Receive<MqttPacket>(p =>
        {
            // Packets sent right behind CONNECT (before CONNACK) are legal; handle them once attached.
            Stash.Stash();
        });
        CommonReceives();
    }

    /// <summary>Waiting for a moved persistent session to recover elsewhere; the client's packets wait too.</summary>
    private void Reattaching()
    {
        Receive<SessionAttached>(_ =>
        {
            Timers.Cancel(AttachTimeout.Instance);
            Timers.Cancel(AttachRetry.Instance);
            _session = Sender;
            Context.Watch(_session);
            Become(Connected);
            ResendPendingQos2();
            Stash.UnstashAll();
        });
        Receive<AttachTimeout>(_ =>
        {
            _log.Warning("Client {ClientId} ({Address}): moved session did not answer; closing so that the client reconnects", _clientId, _remote);
            // 0x88 (server unavailable) is a CONNACK code only; 0x89 is the DISCONNECT code for it (MQTT-v5.0 3.14.2.1).
            Disconnect(MqttReasonCode.ServerBusy);
        });
        Receive<AttachRetry>(_ => RetryAttach());
        Receive<SendPublish>(HandleSendPublish);
        Receive<SendPacket>(HandleSendPacket);
        Receive<RateResume>(_ => HandleRateResume());
        Receive<PublishRouted>(r => InboundRouted(r.AckId, r.Deliveries));
        Receive<DeliveryStored>(r => InboundStored(r.AckId));
        Receive<AckSweep>(_ => SweepAcks());
        Receive<KeepAliveCheck>(_ => CheckKeepAlive());
        Receive<MqttPingReqPacket>(_ => Write(MqttPingRespPacket.Instance));
        Receive<MqttDecodeError>(e => ProtocolViolation(e.Error.ReasonCode, e.Error.Message));
        Receive<MqttPacket>(_ => Stash.Stash());
        CommonReceives();
    }

    private void Connected()
    {
        Receive<MqttPublishPacket>(HandlePublish);
        Receive<MqttPubAckPacket>(p => _session!.Tell(new OutboundAck(Self, MqttPacketType.PubAck, p.PacketId, p.ReasonCode)));
        Receive<MqttPubRecPacket>(p => _session!.Tell(new OutboundAck(Self, MqttPacketType.PubRec, p.PacketId, p.ReasonCode)));
        Receive<MqttPubCompPacket>(p => _session!.Tell(new OutboundAck(Self, MqttPacketType.PubComp, p.PacketId, p.ReasonCode)));
        Receive<MqttPubRelPacket>(p => _session!.Tell(new InboundRelease(Self, p.PacketId)));
        Receive<MqttSubscribePacket>(HandleSubscribe);
        Receive<MqttUnsubscribePacket>(HandleUnsubscribe);
        Receive<MqttPingReqPacket>(_ => Write(MqttPingRespPacket.Instance));
        Receive<MqttDisconnectPacket>(HandleDisconnect);
        Receive<MqttConnectPacket>(_ => ProtocolViolation(MqttReasonCode.ProtocolError, "second CONNECT [MQTT-3.1.0-2]"));
        Receive<MqttAuthPacket>(_ => ProtocolViolation(MqttReasonCode.ProtocolError, "AUTH without an authentication method"));
        Receive<MqttDecodeError>(e => ProtocolViolation(e.Error.ReasonCode, e.Error.Message));
        Receive<MqttPacket>(p => ProtocolViolation(MqttReasonCode.ProtocolError, $"a client may not send {p.Type}"));
        Receive<SendPublish>(HandleSendPublish);
        Receive<SendPacket>(HandleSendPacket);
        Receive<RateResume>(_ => HandleRateResume());
        Receive<InboundStoreFailed>(f =>
        {
            _log.Warning("Client {ClientId} ({Address}): QoS 2 publish {PacketId} could not be stored for every subscriber in time", _clientId, _remote, f.PacketId);
            _inboundQos2Pending.Remove(f.PacketId);
            if (IsV5)
            {
                Write(new MqttPubRecPacket { PacketId = f.PacketId, ReasonCode = MqttReasonCode.UnspecifiedError });
            }
            else
            {
                Disconnect(MqttReasonCode.UnspecifiedError);
            }
        });
        Receive<PublishRouted>(r => InboundRouted(r.AckId, r.Deliveries));
        Receive<DeliveryStored>(r => InboundStored(r.AckId));
        Receive<SessionTakenOver>(_ =>
        {
            _log.Info("Client {ClientId} ({Address}) taken over by a new connection", _clientId, _remote);
            _session = null; // the session has moved on; do not detach it
            Disconnect(MqttReasonCode.SessionTakenOver);
        });
        Receive<KeepAliveCheck>(_ => CheckKeepAlive());
        Receive<AckSweep>(_ => SweepAcks());
        Receive<Terminated>(t =>
        {
            if (!t.ActorRef.Equals(_session))
            {
                return;
            }

            _session = null;
            if (_grantedExpiry > 0 && _connect is not null)
            {
                // The session entity moved (its node left and handed the shard off, or failed): a persistent session
                // is in the journal, so re-attach to it wherever it recovers, without troubling the client.
                _log.Info("Client {ClientId} ({Address}): session moved; re-attaching", _clientId, _remote);
                var info = new ConnectionInfo(_version, CleanStart: false, _grantedExpiry, _connect.Will,
                    IsV5 ? _connect.ReceiveMaximum ?? ushort.MaxValue : ushort.MaxValue);
                RequestAttach(new AttachSession(_clientId, Self, info));
                Timers.StartSingleTimer(AttachTimeout.Instance, AttachTimeout.Instance, TimeSpan.FromSeconds(30));
                Become(Reattaching);
                return;
            }

            // A clean session lived only in memory: it is gone, so the client must start over (0x89: see above).
            _log.Warning("Client {ClientId} ({Address}): session stopped; closing so that the client reconnects", _clientId, _remote);
            Disconnect(MqttReasonCode.ServerBusy);
        });
        CommonReceives();
    }

    private void CommonReceives()
    {
        // An attach asked again (RequestAttach) can be answered twice; the second answer finds us attached.
        Receive<SessionAttached>(_ => { });
        Receive<AttachRetry>(_ => { });
        Receive<Flush>(_ =>
        {
            _flushScheduled = false;
            FlushWrites();
        });
        Receive<ChannelClosed>(_ =>
        {
            if (!_closing)
            {
                _log.Info("Client {ClientId} ({Address}) closed the connection", _clientId, _remote);
                EndingBecause(Cluster.DisconnectReason.ConnectionLost);
            }

            Detach(publishWill: true, newExpiry: null);
            Context.Stop(Self);
        });
        Receive<ServerShuttingDown>(_ =>
        {
            // Graceful node stop: tell v5 clients why (0x8B) so that they reconnect to another node.
            if (_session is not null)
            {
                Disconnect(MqttReasonCode.ServerShuttingDown);
            }
            else
            {
                CloseNow();
            }
        });
        Receive<Operations.AdministrativeDisconnect>(_ => HandleAdministrativeDisconnect());
        Receive<ConnectTimeout>(_ => { });
        Receive<AttachTimeout>(_ => { });
        Receive<AttachRetry>(_ => { });
        Receive<KeepAliveCheck>(_ => { });
        ReceiveAny(_ => { });
    }

    public IStash Stash { get; set; } = null!;

    private void Warn(string format, object arg)
    {
        _log.Warning("Client {ClientId} ({Address}) protocol violation: {Detail}", string.IsNullOrEmpty(_clientId) ? "?" : _clientId, _remote,
            string.Format(System.Globalization.CultureInfo.InvariantCulture, format, arg));
    }

    /// <summary>Published on the event stream when the node stops: every connection closes with 0x8B.</summary>
    public sealed class ServerShuttingDown
    {
        public static readonly ServerShuttingDown Instance = new();
    }

    /// <summary>The channel became inactive.</summary>
    public sealed class ChannelClosed
    {
        public static readonly ChannelClosed Instance = new();
    }

    private sealed class Flush
    {
        public static readonly Flush Instance = new();
    }

    private sealed class ConnectTimeout
    {
        public static readonly ConnectTimeout Instance = new();
    }

    private sealed class AttachTimeout
    {
        public static readonly AttachTimeout Instance = new();
    }

    private sealed class AttachRetry
    {
        public static readonly AttachRetry Instance = new();
    }

    private sealed class KeepAliveCheck
    {
        public static readonly KeepAliveCheck Instance = new();
    }
}
