using Akka.Event;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Sessions;

/// <summary>CONNECT, CONNACK, keep alive and DISCONNECT (MQTT-3.1, 3.2, 3.14; MQTT-v5.0 3.1, 3.2, 3.14).</summary>
public sealed partial class ClientConnectionActor
{
    private void HandleConnect(MqttConnectPacket connect)
    {
        _connect = connect;
        _version = connect.ProtocolVersion;
        _codec.Version = connect.ProtocolVersion;
        _clock.ConnectDeadline = 0;
        var options = _context.Options;

        if (!_context.Metrics.TryOpenConnection(options.Mqtt.MaxConnections))
        {
            _log.Warning("Client {ClientId} ({Address}) refused: Mqtt:MaxConnections ({MaxConnections}) reached", connect.ClientId, _remote, options.Mqtt.MaxConnections);
            RefuseConnect(MqttReasonCode.QuotaExceeded, MqttConnectReturnCode.ServerUnavailable);
            return;
        }

        _countedConnection = true;
        _clientId = connect.ClientId;
        string? assigned = null;
        if (_clientId.Length == 0)
        {
            if (IsV5)
            {
                // MQTT-v5.0 3.2.2.3.7: the server assigns a client identifier and returns it in CONNACK.
                assigned = "auto-" + Guid.NewGuid().ToString("N");
                _clientId = assigned;
            }
            else if (connect.CleanStart && _version == MqttProtocolVersion.V311)
            {
                // [MQTT-3.1.3-6] 3.1.1 allows an empty id with Clean Session 1; the server makes one up.
                _clientId = "auto-" + Guid.NewGuid().ToString("N");
            }
            else
            {
                // [MQTT-3.1.3-8] empty id with Clean Session 0 (or MQTT 3.1): identifier rejected.
                Warn("sent an empty client id with {0}", connect.CleanStart ? "MQTT 3.1" : "Clean Session 0");
                RefuseConnect(MqttReasonCode.ClientIdentifierNotValid, MqttConnectReturnCode.IdentifierRejected);
                return;
            }
        }

        if (connect.Will is { } will && !MqttTopic.IsValidTopicName(will.Topic))
        {
            Warn("sent an invalid will topic '{0}'", will.Topic);
            RefuseConnect(MqttReasonCode.TopicNameInvalid, MqttConnectReturnCode.IdentifierRejected, closeOnly: !IsV5);
            return;
        }

        if (connect.AuthenticationMethod is not null)
        {
            // No enhanced authentication methods are offered (MQTT-v5.0 4.12).
            RefuseConnect(MqttReasonCode.BadAuthenticationMethod, MqttConnectReturnCode.NotAuthorized);
            return;
        }

        _assignedClientId = assigned;
        Authenticate(connect); // continues in ContinueConnect once the authenticator has answered
    }

    private KeepAliveGrant _keepAlive;

    /// <summary>The client is authenticated: open (or resume) its session.</summary>
    private void ContinueConnect()
    {
        var connect = _connect!;
        var options = _context.Options;
        uint expiry;
        if (IsV5)
        {
            expiry = (uint)Math.Min(connect.SessionExpiryInterval, options.Sessions.MaxSessionExpiry);
            if (connect.SessionExpiryInterval == uint.MaxValue && options.Sessions.MaxSessionExpiry >= uint.MaxValue)
            {
                expiry = uint.MaxValue;
            }
        }
        else
        {
            expiry = connect.CleanStart ? 0 : (uint)Math.Min(options.Sessions.PersistentSessionExpiry, uint.MaxValue - 1);
        }

        _grantedExpiry = expiry;
        _keepAlive = KeepAlivePolicy.Resolve(connect.KeepAlive, IsV5, options.Mqtt.ServerKeepAlive, options.Mqtt.MaxKeepAlive);
        _keepAliveSeconds = _keepAlive.Seconds;
        _clientMaxPacketSize = connect.MaximumPacketSize ?? uint.MaxValue;
        _clientTopicAliasMaximum = IsV5 ? connect.TopicAliasMaximum : (ushort)0;

        var info = new ConnectionInfo(_version, connect.CleanStart, expiry, connect.Will,
            IsV5 ? connect.ReceiveMaximum ?? ushort.MaxValue : ushort.MaxValue);
        RequestAttach(new AttachSession(_clientId, Self, info));
        Timers.StartSingleTimer(AttachTimeout.Instance, AttachTimeout.Instance, TimeSpan.FromSeconds(10));
        Become(Attaching);
    }

    /// <summary>
    /// Asks the session region for the session, and asks again every <see cref="AttachRetryInterval"/> until it
    /// answers. While a node is dying, a region still sends to the shard's old home on that node until the node is
    /// removed, and such a message is lost. The session entity ignores an attach from the connection it already has
    /// (SessionEntity.HandleAttach), so a repeat that crosses the first answer changes nothing.
    /// </summary>
    private void RequestAttach(AttachSession attach)
    {
        _attachRequest = attach;
        _context.SessionRegion.Tell(attach);
        Timers.StartPeriodicTimer(AttachRetry.Instance, AttachRetry.Instance, AttachRetryInterval);
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
        Timers.Cancel(AttachTimeout.Instance);
        Timers.Cancel(AttachRetry.Instance);
        _session = Sender;
        Context.Watch(_session);
        var options = _context.Options;
        var connack = new MqttConnAckPacket { SessionPresent = attached.SessionPresent };
        if (IsV5)
        {
            connack = connack with
            {
                AssignedClientIdentifier = _assignedClientId,
                ReceiveMaximum = (ushort)options.Mqtt.ReceiveMaximum,
                // At the protocol's limit the property is left out ("no limit beyond the protocol's", MQTT-v5.0
                // 3.2.2.3.6): paho refuses a CONNACK whose value is above 268,435,455.
                MaximumPacketSize = options.Mqtt.MaxPacketSize > 268_435_455 ? null : (uint)options.Mqtt.MaxPacketSize,
                TopicAliasMaximum = (ushort)options.Mqtt.TopicAliasMaximum,
                SessionExpiryInterval = _grantedExpiry != _connect!.SessionExpiryInterval ? _grantedExpiry : null,
                ServerKeepAlive = _keepAlive.ServerKeepAlive,
                RetainAvailable = true,
                WildcardSubscriptionAvailable = true,
                SubscriptionIdentifiersAvailable = true,
                SharedSubscriptionAvailable = true,
            };
        }

        Write(connack);
        AnnounceConnected();
        _log.Info(
            "Client {ClientId} ({Address}) connected: MQTT {ProtocolVersion}, clean start {CleanStart}, " +
            "session expiry {SessionExpiry} s, keep alive {KeepAlive} s, session present {SessionPresent}",
            new object[] { _clientId, _remote, VersionName(_version), _connect!.CleanStart, _grantedExpiry, _keepAliveSeconds, attached.SessionPresent });

        // [MQTT-3.1.2-24] close after one and a half keep alive periods without a packet: the node's sweep
        // (ConnectionSet) asks for a check once that much silence has passed.
        _clock.KeepAliveMs = _keepAliveSeconds * 1000;

        Become(Connected);
        Stash.UnstashAll();
    }

    private void RefuseConnect(MqttReasonCode v5Reason, MqttConnectReturnCode v3Code, bool closeOnly = false)
    {
        _context.Metrics.ConnectRefusedAdd(v5Reason);
        if (!closeOnly)
        {
            Write(new MqttConnAckPacket { ReasonCode = IsV5 ? (byte)v5Reason : (byte)v3Code });
        }

        CloseAfterFlush();
    }

    private void CheckKeepAlive()
    {
        var idleMs = Environment.TickCount64 - _clock.LastPacketTicks;
        if (_readingPaused)
        {
            // We stopped reading this client (back-pressure): its silence is ours, not a dead connection.
            _clock.LastPacketTicks = Environment.TickCount64;
            return;
        }

        if (idleMs > _keepAliveSeconds * 1500L)
        {
            _log.Warning("Client {ClientId} ({Address}) keep alive timeout after {IdleMs} ms without a packet", _clientId, _remote, idleMs);
            Disconnect(MqttReasonCode.KeepAliveTimeout);
        }
    }

    private void HandleDisconnect(MqttDisconnectPacket disconnect)
    {
        uint? newExpiry = null;
        if (IsV5 && disconnect.SessionExpiryInterval is { } requested)
        {
            if (_connect!.SessionExpiryInterval == 0 && requested != 0)
            {
                // [MQTT-3.14.2-2] a session that was opened with expiry 0 cannot be extended at DISCONNECT.
                ProtocolViolation(MqttReasonCode.ProtocolError, "DISCONNECT raised a zero Session Expiry Interval");
                return;
            }

            newExpiry = (uint)Math.Min(requested, _context.Options.Sessions.MaxSessionExpiry);
        }

        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; v5 reason 0x04 asks for it to be published.
        var publishWill = IsV5 && disconnect.ReasonCode == MqttReasonCode.DisconnectWithWillMessage;
        EndingBecause(Cluster.DisconnectReason.ClientDisconnect);
        _log.Info("Client {ClientId} ({Address}) disconnected (reason 0x{Reason:X2})", _clientId, _remote, (byte)disconnect.ReasonCode);
        Detach(publishWill, newExpiry);
        _closing = true;
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
