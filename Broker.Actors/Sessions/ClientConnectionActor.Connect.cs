using Akka.Event;
using Akka.Actor;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Sessions;

/// <summary>
/// CONNECT, CONNACK, keep alive and DISCONNECT (MQTT-3.1, 3.2, 3.14; MQTT-v5.0 3.1, 3.2, 3.14): the actor's side. The
/// rules are <see cref="ConnectRules"/>, <see cref="KeepAlivePolicy"/> and <see cref="CloseRules"/>; the moves between
/// states are <see cref="ConnectionLifecycle"/>'s.
/// </summary>
public sealed partial class ClientConnectionActor
{
    private void HandleConnect(MqttConnectPacket connect)
    {
        _pendingConnect = new PendingConnect(connect);
        _connectReceived = true;
        _version = connect.ProtocolVersion;
        _codec.Version = connect.ProtocolVersion;
        _clock.ConnectDeadline = 0;
        var options = _context.Options;

        if (!_context.Metrics.TryOpenConnection(options.Mqtt.MaxConnections))
        {
            _log.Warning("Client {ClientId} ({Address}) refused: Mqtt:MaxConnections ({MaxConnections}) reached", connect.ClientId, _remote, options.Mqtt.MaxConnections);
            RefuseConnect(CloseRules.ConnectionLimitReached);
            return;
        }

        _countedConnection = true;
        _clientId = connect.ClientId;
        if (ConnectRules.Admit(connect, static () => "auto-" + Guid.NewGuid().ToString("N"), out var admission) is { } refusal)
        {
            Warn("{0}", refusal.Why);
            RefuseConnect(refusal);
            return;
        }

        _clientId = admission.ClientId;
        _admission = admission;
        Authenticate(connect); // continues in ContinueConnect once the authenticator has answered
    }

    private MqttConnectPacket? _connect => _pendingConnect?.Packet;

    private KeepAliveGrant _keepAlive
    {
        get => _pendingConnect!.KeepAlive;
        set => _pendingConnect!.KeepAlive = value;
    }

    private ConnectAdmission _admission
    {
        get => _pendingConnect!.Admission;
        set => _pendingConnect!.Admission = value;
    }

    /// <summary>What the connection holds from its CONNECT until the CONNACK (then <see cref="KeepConnectTerms"/>).</summary>
    private sealed class PendingConnect(MqttConnectPacket packet)
    {
        public MqttConnectPacket Packet { get; } = packet;

        public ConnectAdmission Admission { get; set; }

        public KeepAliveGrant KeepAlive { get; set; }
    }

    /// <summary>The client is authenticated: open (or resume) its session.</summary>
    private void ContinueConnect()
    {
        var connect = _connect!;
        var terms = ConnectRules.Terms(connect, _context.Options.Mqtt, _context.Options.Sessions);
        _grantedExpiry = terms.GrantedExpiry;
        _keepAlive = terms.KeepAlive;
        _keepAliveSeconds = terms.KeepAlive.Seconds;
        _clientMaxPacketSize = terms.ClientMaxPacketSize;
        _clientTopicAliasMaximum = terms.ClientTopicAliasMaximum;
        _receiveMaximum = terms.ClientReceiveMaximum;

        var info = new ConnectionInfo(_version, connect.CleanStart, terms.GrantedExpiry, connect.Will, terms.ClientReceiveMaximum);
        RequestAttach(new AttachSession(_clientId, Self, info), AttachAnswerTimeout);
        Move(ConnectionEvent.Authenticated);
    }

    private static readonly TimeSpan AttachAnswerTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Asks the session region for the session, and asks again every <see cref="AttachRetryInterval"/> until it
    /// answers, or gives up after <paramref name="timeout"/> (<see cref="AttachTimeout"/>). Both are watched by the
    /// node's sweep (<see cref="ConnectionSet"/>) through this connection's clock, not by timers of its own. While a node is dying, a region still sends to the shard's old home on that node until the node is
    /// removed, and such a message is lost. The session entity ignores an attach from the connection it already has
    /// (SessionEntity.HandleAttach), so a repeat that crosses the first answer changes nothing.
    /// </summary>
    private void RequestAttach(AttachSession attach, TimeSpan timeout)
    {
        _attachRequest = attach;
        _context.SessionRegion.Tell(attach);
        var now = Environment.TickCount64;
        _clock.AttachRetryAt = now + (long)AttachRetryInterval.TotalMilliseconds;
        _clock.AttachDeadline = now + (long)timeout.TotalMilliseconds;
    }

    /// <summary>The session answered (or the attach is given up): the sweep stops asking again and timing it.</summary>
    private void AttachAnswered()
    {
        _clock.AttachDeadline = 0;
        _clock.AttachRetryAt = 0;
        _attachRequest = null; // answered: nothing to ask again
    }

    /// <summary>The sender of <paramref name="attached"/> is the session from now on; watched unless it runs beside this connection.</summary>
    private void WatchSession(SessionAttached attached)
    {
        _session = Sender;
        if (attached.Beside)
        {
            _besideSession = Sender;
        }
        else
        {
            Context.Watch(_session);
        }
    }

    private void RetryAttach()
    {
        if (_attachRequest is not null)
        {
            _context.SessionRegion.Tell(_attachRequest);
        }
    }

    private void HandleAttached(SessionAttached attached)
    {
        AttachAnswered();
        WatchSession(attached);
        var connack = ConnectRules.ConnAck(_connect!, attached.SessionPresent, _admission, _grantedExpiry, _keepAlive, _context.Options.Mqtt);
        Write(connack);
        AnnounceConnected();
        _log.Info(
            "Client {ClientId} ({Address}) connected: MQTT {ProtocolVersion}, clean start {CleanStart}, " +
            "session expiry {SessionExpiry} s, keep alive {KeepAlive} s, session present {SessionPresent}",
            new object[] { _clientId, _remote, VersionName(_version), _connect!.CleanStart, _grantedExpiry, _keepAliveSeconds, attached.SessionPresent });
        KeepConnectTerms();

        // [MQTT-3.1.2-24] close after one and a half keep alive periods without a packet: the node's sweep
        // (ConnectionSet) asks for a check once that much silence has passed.
        _clock.KeepAliveMs = _keepAliveSeconds * 1000;

        Move(ConnectionEvent.SessionAttached);
        if (_takenOverBeforeAttached)
        {
            TakenOver();
            return;
        }

        Stash.UnstashAll();
    }

    /// <summary>
    /// Lets the CONNECT packet go once it is answered (its password, properties and names are of no further use),
    /// keeping what a DISCONNECT (<see cref="ConnectRules.Disconnect(MqttProtocolVersion, uint, MqttDisconnectPacket, Configuration.SessionOptions)"/>)
    /// and a re-attach to a moved session read of it.
    /// </summary>
    private void KeepConnectTerms()
    {
        var connect = _connect!;
        _cleanStart = connect.CleanStart;
        _requestedExpiry = connect.SessionExpiryInterval;
        _will = connect.Will;
        _pendingConnect = null;
    }

    private void RefuseConnect(ConnectRefusal refusal)
    {
        _context.Metrics.ConnectRefusedAdd(refusal.V5Reason);
        if (CloseRules.PacketOf(CloseRules.ForRefusedConnect(refusal, IsV5)) is { } connack)
        {
            Write(connack);
        }

        CloseAfterFlush();
    }

    private void CheckKeepAlive()
    {
        var now = Environment.TickCount64;
        var lastPacket = _clock.LastPacketTicks;
        switch (KeepAlivePolicy.Check(_keepAliveSeconds, lastPacket, now, _readingPaused))
        {
            case KeepAliveVerdict.Paused:
                _clock.LastPacketTicks = now; // the broker stopped reading this client: start counting again
                break;
            case KeepAliveVerdict.Expired:
                _log.Warning("Client {ClientId} ({Address}) keep alive timeout after {IdleMs} ms without a packet", _clientId, _remote, now - lastPacket);
                Disconnect(CloseRules.KeepAliveExpired);
                break;
        }
    }

    private void HandleDisconnect(MqttDisconnectPacket disconnect)
    {
        if (ConnectRules.Disconnect(_version, _requestedExpiry, disconnect, _context.Options.Sessions) is not { } effect)
        {
            // [MQTT-3.14.2-2] a session that was opened with expiry 0 cannot be extended at DISCONNECT.
            ProtocolViolation(CloseRules.ExpiryRaisedFromZero, "DISCONNECT raised a zero Session Expiry Interval");
            return;
        }

        EndingBecause(Cluster.DisconnectReason.ClientDisconnect);
        _log.Info("Client {ClientId} ({Address}) disconnected (reason 0x{Reason:X2})", _clientId, _remote, (byte)disconnect.ReasonCode);
        Detach(effect.PublishWill, effect.NewExpiry);
        Move(ConnectionEvent.Closed);
        _channel.CloseAsync();
        Context.Stop(Self);
    }

    private static string VersionName(MqttProtocolVersion v) => v switch
    {
        MqttProtocolVersion.V310 => "3.1",
        MqttProtocolVersion.V311 => "3.1.1",
        _ => "5.0",
    };
}
