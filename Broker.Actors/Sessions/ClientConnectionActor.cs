using System.Net;
using Akka.Actor;
using Akka.Event;
using Broker.Channel;
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
/// (<see cref="ClientChannelHandler"/>), sends publishes to the topic entities and everything stateful to the client's
/// <see cref="SessionEntity"/>, and writes what the session decides to send, flushing once per mailbox batch. The
/// protocol rules are in Broker.Channel: of its life (<see cref="ConnectionLifecycle"/>, <see cref="ConnectRules"/>,
/// <see cref="CloseRules"/>, <see cref="KeepAlivePolicy"/>), of what the client sends (<see cref="InboundChannel"/>:
/// topic aliases, receive maximum, QoS 1 acknowledgements, QoS 2 hand-overs, SUBSCRIBE order) and of what it is sent
/// (<see cref="OutboundPublish"/>): this actor carries out what they decide.
/// <code>
///   AwaitingConnect ─► Authenticating ─► Attaching ─► Connected ◄─► Reattaching;  any ─► Closing (stopped)
/// </code>
/// </summary>
public sealed partial class ClientConnectionActor : LazyStashActor
{
    private readonly IChannel _channel;
    private readonly MqttCodecState _codec;
    private readonly BrokerContext _context;
    private ILoggingAdapter _log => _context.ConnectionLog;
    private readonly string _remote;

    private const int MaxBatch = 256;
    private static readonly TimeSpan AttachRetryInterval = TimeSpan.FromSeconds(2);
    // What waits for the next flush: a lone packet (a CONNACK, a PUBACK, one delivery) in _pendingOne, two or more in
    // _pendingWrites, never both. An idle connection keeps no list: most flushes carry one packet.
    private MqttPacket? _pendingOne;
    private List<MqttPacket>? _pendingWrites;
    private bool _flushScheduled;
    private bool _closing => _behaviour == ConnectionState.Closing;
    private bool _countedConnection;
    private bool _takenOverBeforeAttached;

    // The CONNECT, its admission and keep alive until the CONNACK; then only what a DISCONNECT and a re-attach need:
    private PendingConnect? _pendingConnect;
    private bool _connectReceived;
    private bool _cleanStart;
    private ushort _receiveMaximum = ushort.MaxValue; // as the session is told (v5 only)
    private uint _requestedExpiry; // as the client asked in its CONNECT
    private MqttWill? _will;
    private string _clientId = "";
    private MqttProtocolVersion _version = MqttProtocolVersion.V311;
    private IActorRef? _session;
    private AttachSession? _attachRequest;
    private ConnectionClock _clock = null!;
    private int _keepAliveSeconds;

    // What only authorization, rate limits, QoS 0 probes, aliases, releases, rerouting or the end need: created with the first of them.
    private ConnectionOccasionalState? _occasional;

    private ConnectionOccasionalState Occasional => _occasional ??= new();

    public ClientConnectionActor(IChannel channel, MqttCodecState codec, BrokerContext context)
    {
        _channel = channel;
        _codec = codec;
        _context = context;
        EventLoopDispatcher.Bind(Context, channel.EventLoop); // see Props
        // DotNetty's dual-mode sockets report IPv4 peers as ::ffff:a.b.c.d; logs and the management API show a.b.c.d.
        _remote = channel.RemoteAddress is IPEndPoint { Address.IsIPv4MappedToIPv6: true } mapped
            ? new IPEndPoint(mapped.Address.MapToIPv4(), mapped.Port).ToString()
            : channel.RemoteAddress?.ToString() ?? "?";
    }

    private ActorTimers _timers; // a struct: allocates only while a timer runs

    private ref ActorTimers Timers => ref _timers;

    public static Props Props(IChannel channel, MqttCodecState codec, BrokerContext context) =>
        FactoryProps.Of((channel, codec, context), static s => new ClientConnectionActor(s.channel, s.codec, s.context), FactoryProps.LeanOnLoop);

    private bool IsV5 => _version == MqttProtocolVersion.V500;

    protected override void PreStart()
    {
        // CONNECT's deadline and keep alive are watched by the node's one sweep (ConnectionSet), not a timer each.
        _clock = _context.Connections.Add(Self, TimeSpan.FromSeconds(_context.Options.Mqtt.ConnectTimeout));
    }

    protected override void PostStop()
    {
        _context.Connections.Remove(Self);
        _routeBatch?.Send(_context.TopicRegion);
        // Also after a detach or a takeover: the session ignores it unless this is still its connection.
        if (_besideSession is not null)
        {
            _besideSession.Tell(new ConnectionStopped(Self));
        }
        else if (_attachRequest is not null || _sessionStarting)
        {
            // Stopped before the session answered: a live session started for this connection learns it from the host.
            _context.Nodes.SelfHost.Tell(new AttachAbandoned(Self, _clientId, _sessionStarting ? _dormantIncarnation : 0));
        }
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

    // Behaviours are plain switches (UntypedActor): a ReceiveActor keeps a delegate per Receive<T> per behaviour for
    // every connection (about 4 KB of an idle connection's memory, docs/benchmarks.md); a switch keeps none. The current
    // one is a field (see Move below), starting with AwaitingConnect.
    protected override void OnReceive(object message)
    {
        switch (_behaviour)
        {
            case ConnectionState.AwaitingConnect:
                AwaitingConnect(message);
                break;
            case ConnectionState.Authenticating:
                Authenticating(message);
                break;
            case ConnectionState.Attaching:
                Attaching(message);
                break;
            case ConnectionState.Connected:
                Connected(message);
                break;
            case ConnectionState.Reattaching:
                Reattaching(message);
                break;
            case ConnectionState.Closing:
                break; // stopped after this message: nothing more is read
        }
    }

    /// <summary>
    /// Moves to the state <see cref="ConnectionLifecycle.Transition"/> gives for <paramref name="event"/>, which switches
    /// behaviour for the next message. Not Akka's Become: that moves the actor's state into a larger object with a
    /// behaviour stack and three watch collections (about 600 bytes per actor), kept for the actor's life. So does a
    /// watch, so a connection whose session runs beside it watches nothing (the two tell each other when they stop).
    /// An illegal move means this connection lost track of itself: it is logged and the connection closed.
    /// </summary>
    private void Move(ConnectionEvent @event)
    {
        var step = ConnectionLifecycle.Transition(_behaviour, @event);
        if (step.Legal)
        {
            _behaviour = step.To;
            return;
        }

        _log.Error("Client {ClientId} ({Address}): illegal connection move {Event} from {State}; closing", _clientId, _remote, @event, _behaviour);
        CloseNow();
    }

    /// <summary>A client packet the current behaviour has no handler for: what <see cref="ConnectionLifecycle.OnPacket"/> says.</summary>
    private void Unexpected(MqttPacket packet)
    {
        var answer = ConnectionLifecycle.OnPacket(_behaviour, packet.Type);
        switch (answer.Verdict)
        {
            case PacketVerdict.Stash:
                StashPacket();
                break;
            case PacketVerdict.CloseWithoutAnswer:
                Warn(answer.Why!, packet.Type);
                CloseNow();
                break;
            case PacketVerdict.ProtocolViolation:
                ProtocolViolation(answer.Reason, answer.Why!);
                break;
        }
    }

    private void AwaitingConnect(object message)
    {
        switch (message)
        {
            case MqttConnectPacket connect:
                HandleConnect(connect);
                break;
            case MqttDecodeError e:
                ProtocolViolation(e.Error.ReasonCode, e.Error.Message);
                break;
            case MqttPacket p:
                Unexpected(p); // [MQTT-3.1.0-1] the first packet must be CONNECT; closed without CONNACK
                break;
            case ConnectTimeout:
                Warn("sent no CONNECT within {0} s", _context.Options.Mqtt.ConnectTimeout);
                CloseNow();
                break;
            default:
                CommonReceives(message);
                break;
        }
    }

    private void Attaching(object message)
    {
        switch (message)
        {
            case SessionAttached attached:
                HandleAttached(attached);
                break;
            case SessionDormant dormant:
                _sessionDormant = true; // the host stands in for the session until a packet needs it (WakeSession)
                _dormantIncarnation = dormant.Incarnation;
                HandleAttached(new SessionAttached(SessionPresent: false, Beside: true));
                break;
            case AttachRetry:
                RetryAttach();
                break;
            case SessionTakenOver:
                // A newer connection of the client id came before this one's session answered (its session and the
                // takeover come from different actors): it is answered, then closed as taken over (0x8E).
                _takenOverBeforeAttached = true;
                break;
            case AttachTimeout:
                _log.Warning("Client {ClientId} ({Address}): session did not answer; refusing the connection", _clientId, _remote);
                RefuseConnect(CloseRules.SessionDidNotAnswer);
                break;
            case MqttDecodeError e:
                ProtocolViolation(e.Error.ReasonCode, e.Error.Message);
                break;
            case MqttPacket p:
                Unexpected(p); // packets sent right behind CONNECT (before CONNACK) are legal: handled once attached
                break;
            default:
                CommonReceives(message);
                break;
        }
    }

    /// <summary>What every behaviour does with the messages it does not handle itself; nothing is left unhandled.</summary>
    private void CommonReceives(object message)
    {
        switch (message)
        {
            case Flush:
                _flushScheduled = false;
                _routeBatch?.Send(_context.TopicRegion);
                FlushWrites();
                break;
            case ChannelClosed:
                if (!_closing)
                {
                    _log.Info("Client {ClientId} ({Address}) closed the connection", _clientId, _remote);
                    EndingBecause(Cluster.DisconnectReason.ConnectionLost);
                }

                Detach(publishWill: true, newExpiry: null);
                Context.Stop(Self);
                break;
            case ServerShuttingDown:
                // Graceful node stop: tell the client why (v5 DISCONNECT 0x8B, or CONNACK 0x88 to a CONNECT not yet
                // answered) so that it reconnects to another node.
                switch (CloseRules.OnNodeStopping(_behaviour))
                {
                    case NodeStoppingAnswer.Disconnect:
                        Disconnect(CloseRules.NodeStopping);
                        break;
                    case NodeStoppingAnswer.RefuseConnect:
                        _log.Info("Client {ClientId} ({Address}): the node is stopping before its CONNECT was answered; refused", _clientId, _remote);
                        RefuseConnect(CloseRules.NodeStoppingBeforeConnAck);
                        break;
                    default:
                        CloseNow();
                        break;
                }

                break;
            case Operations.AdministrativeDisconnect:
                HandleAdministrativeDisconnect();
                break;
            case AclDecided decided:
                HandleAclDecided(decided);
                break;
            default:
                // An attach asked again (RequestAttach) can be answered twice; the second answer finds us attached.
                // Timers of an earlier behaviour (ConnectTimeout, AttachTimeout, AttachRetry, KeepAliveCheck) and
                // anything else are ignored.
                break;
        }
    }


    private ConnectionState _behaviour; // an enum, not a delegate: one object less per connection
    private IActorRef? _besideSession; // the live session beside this connection: not watched, told when this stops (SessionAttached)
    private bool _sessionDormant; // a clean session not started yet: _session is the node's session host (SessionDormant)
    private bool _sessionStarting; // asked the host to start it (WakeSession), not answered yet
    private long _dormantIncarnation; // the dormant session's incarnation (the host's key for it once started)

    private void Warn(string format, object arg)
    {
        _log.Warning("Client {ClientId} ({Address}) protocol violation: {Detail}", string.IsNullOrEmpty(_clientId) ? "?" : _clientId, _remote,
            string.Format(System.Globalization.CultureInfo.InvariantCulture, format, arg));
    }

    /// <summary>Told to every connection (<see cref="ConnectionSet"/>) when the node stops: each closes with 0x8B.</summary>
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

    internal sealed class ConnectTimeout
    {
        public static readonly ConnectTimeout Instance = new();
    }

    internal sealed class AttachTimeout
    {
        public static readonly AttachTimeout Instance = new();
    }

    internal sealed class AttachRetry
    {
        public static readonly AttachRetry Instance = new();
    }

    internal sealed class KeepAliveCheck
    {
        public static readonly KeepAliveCheck Instance = new();
    }
}
