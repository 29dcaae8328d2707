using Broker.Cluster;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Channel;

/// <summary>What the connection writes before it closes.</summary>
public enum CloseAnswer : byte
{
    /// <summary>Nothing: the socket is closed.</summary>
    CloseOnly,

    /// <summary>A CONNACK with the given return code (before a session is attached), then close.</summary>
    ConnAck,

    /// <summary>A v5 DISCONNECT with the given reason code (once CONNACK was sent), then close.</summary>
    Disconnect,
}

/// <summary>What a connection does when its node stops gracefully (<see cref="CloseRules.OnNodeStopping"/>).</summary>
public enum NodeStoppingAnswer : byte
{
    /// <summary>No CONNECT yet (or already closing): the socket is closed.</summary>
    CloseOnly,

    /// <summary>A CONNECT not answered yet: refused with <see cref="CloseRules.NodeStoppingBeforeConnAck"/>.</summary>
    RefuseConnect,

    /// <summary>Connected (CONNACK sent): closed with <see cref="CloseRules.NodeStopping"/>.</summary>
    Disconnect,
}

/// <summary>A close decision: what to write (<see cref="Answer"/>) with which code, and the reason counted in mqtt_disconnects_total.</summary>
public readonly record struct CloseDecision(CloseAnswer Answer, byte Code, DisconnectReason EndReason);

/// <summary>
/// How a connection ends, apart from the actor that ends it: the one place that maps a broken rule or a server-side
/// close to what the client is told (MQTT-v5.0 4.13 "Handling errors", 3.14 DISCONNECT; MQTT-3.2 CONNACK) and to the
/// reason the close is counted under.
/// <list type="bullet">
/// <item>A protocol violation before CONNECT was answered with an unknown protocol level: CONNACK 0x01 in 3.1.1 format
///   [MQTT-3.1.2-2]. Once a session is attached (CONNACK sent), a v5 client gets a DISCONNECT with the reason code;
///   before that, or in 3.1.1 (which has no server DISCONNECT), the socket is closed [MQTT-4.13.1-1].</item>
/// <item>A server-initiated close (keep alive 0x8D [MQTT-3.1.2-24], takeover 0x8E, shutdown 0x8B, operator 0x98,
///   session lost 0x89): DISCONNECT with the reason in v5, a plain close in 3.1.1. Each is named below.</item>
/// <item>A refused CONNECT: CONNACK with the v5 reason or the 3.1.1 return code, unless the refusal closes only (a
///   3.1.1 client's invalid will topic has no return code). The server's own refusals are named below; the
///   CONNECT's are <see cref="ConnectRules.Admit"/>'s.</item>
/// </list>
/// Pure: the actor writes, detaches and closes as told.
/// </summary>
public static class CloseRules
{
    // ---- CONNECTs the server refuses (CONNACK: the v5 reason, or its MQTT 3.1.1 return code, 3.2.2.3) ----

    /// <summary>Mqtt:MaxConnections reached: v5 0x97 Quota exceeded; 3.1.1 has no quota code, 0x03 Server unavailable.</summary>
    public static readonly ConnectRefusal ConnectionLimitReached =
        new(MqttReasonCode.QuotaExceeded, MqttConnectReturnCode.ServerUnavailable, false, "Mqtt:MaxConnections reached");

    /// <summary>The session did not answer the attach in time: 0x88 Server unavailable; 3.1.1 0x03.</summary>
    public static readonly ConnectRefusal SessionDidNotAnswer =
        new(MqttReasonCode.ServerUnavailable, MqttConnectReturnCode.ServerUnavailable, false, "the session did not answer");

    /// <summary>The authenticator did not answer in time: 0x88 Server unavailable; 3.1.1 0x03.</summary>
    public static readonly ConnectRefusal AuthenticatorDidNotAnswer =
        new(MqttReasonCode.ServerUnavailable, MqttConnectReturnCode.ServerUnavailable, false, "the authenticator did not answer");

    /// <summary>The authenticator failed (an error, not a verdict): 0x88 Server unavailable; 3.1.1 0x03.</summary>
    public static readonly ConnectRefusal AuthenticatorFailed =
        new(MqttReasonCode.ServerUnavailable, MqttConnectReturnCode.ServerUnavailable, false, "the authenticator failed");

    /// <summary>No credentials, and anonymous clients are not allowed: 0x87 Not authorized; 3.1.1 0x05.</summary>
    public static readonly ConnectRefusal NotAuthorized =
        new(MqttReasonCode.NotAuthorized, MqttConnectReturnCode.NotAuthorized, false, "no credentials and anonymous clients are not allowed");

    /// <summary>Bad user name or password: 0x86; 3.1.1 0x04.</summary>
    public static readonly ConnectRefusal BadCredentials =
        new(MqttReasonCode.BadUserNameOrPassword, MqttConnectReturnCode.BadUserNameOrPassword, false, "bad username or password");

    /// <summary>The client may not publish its will to its topic: 0x87 Not authorized; 3.1.1 0x05.</summary>
    public static readonly ConnectRefusal WillNotAuthorized =
        new(MqttReasonCode.NotAuthorized, MqttConnectReturnCode.NotAuthorized, false, "may not publish its will");

    /// <summary>
    /// The node stops gracefully while the client's CONNECT waits for its answer: 0x88 Server unavailable; 3.1.1 0x03,
    /// so that the client connects to another node.
    /// </summary>
    public static readonly ConnectRefusal NodeStoppingBeforeConnAck =
        new(MqttReasonCode.ServerUnavailable, MqttConnectReturnCode.ServerUnavailable, false, "the node is stopping");

    /// <summary>
    /// What a connection in <paramref name="state"/> does when its node stops gracefully. Once CONNACK was sent the
    /// client is connected, also while its session is being asked for again after a move (<see cref="ConnectionState.Reattaching"/>,
    /// when the connection holds no session): it hears DISCONNECT 0x8B (<see cref="NodeStopping"/>; 3.1.1: closed).
    /// A CONNECT not yet answered is refused (<see cref="NodeStoppingBeforeConnAck"/>); a socket that sent no CONNECT
    /// is closed.
    /// </summary>
    public static NodeStoppingAnswer OnNodeStopping(ConnectionState state) => state switch
    {
        ConnectionState.Connected or ConnectionState.Reattaching => NodeStoppingAnswer.Disconnect,
        ConnectionState.Authenticating or ConnectionState.Attaching => NodeStoppingAnswer.RefuseConnect,
        _ => NodeStoppingAnswer.CloseOnly,
    };

    // ---- the server closes a connected client (v5 DISCONNECT with the reason; 3.1.1 just closes: ForServerClose) ----

    /// <summary>
    /// A moved session did not answer the re-attach in time: 0x89 Server busy (0x88 Server unavailable is a CONNACK
    /// code only, MQTT-v5.0 3.14.2.1), so that the client reconnects.
    /// </summary>
    public const MqttReasonCode SessionDidNotReturn = MqttReasonCode.ServerBusy;

    /// <summary>A clean session (in memory only) stopped under its client: 0x89 Server busy, so that the client starts over.</summary>
    public const MqttReasonCode SessionStopped = MqttReasonCode.ServerBusy;

    /// <summary>A new connection took the session over: 0x8E Session taken over.</summary>
    public const MqttReasonCode TakenOver = MqttReasonCode.SessionTakenOver;

    /// <summary>No packet within one and a half times the Keep Alive [MQTT-3.1.2-24]: 0x8D Keep alive timeout.</summary>
    public const MqttReasonCode KeepAliveExpired = MqttReasonCode.KeepAliveTimeout;

    /// <summary>An operator disconnected the client (management API): 0x98 Administrative action.</summary>
    public const MqttReasonCode OperatorClose = MqttReasonCode.AdministrativeAction;

    /// <summary>The node stops gracefully: 0x8B Server shutting down, so that the client reconnects to another node.</summary>
    public const MqttReasonCode NodeStopping = MqttReasonCode.ServerShuttingDown;

    /// <summary>
    /// A 3.1.1 client's QoS 1 publish not stored everywhere in time: 3.1.1 has no failure acknowledgement, so it is
    /// closed (counted under the server error 0x80 Unspecified error; a v5 client hears PUBACK 0x80 instead).
    /// </summary>
    public const MqttReasonCode NotStoredInTimeV311 = MqttReasonCode.UnspecifiedError;

    /// <summary>
    /// A 3.1.1 client's publish refused by a full queue or a session slow to confirm: closed unacknowledged (counted
    /// under 0x97 Quota exceeded; a v5 client hears PUBACK/PUBREC 0x97 instead).
    /// </summary>
    public const MqttReasonCode PublishRefusedV311 = MqttReasonCode.QuotaExceeded;

    /// <summary>A DISCONNECT that raises a zero Session Expiry Interval [MQTT-3.14.2-2]: a protocol error (0x82).</summary>
    public const MqttReasonCode ExpiryRaisedFromZero = MqttReasonCode.ProtocolError;

    /// <summary>A protocol violation with <paramref name="reason"/>.</summary>
    /// <param name="connectReceived">Whether a CONNECT was decoded (its version is then known).</param>
    /// <param name="attached">Whether a session is attached (CONNACK was sent and the session not yet let go).</param>
    public static CloseDecision ForViolation(MqttReasonCode reason, bool connectReceived, bool attached, bool v5)
    {
        if (!connectReceived && reason == MqttReasonCode.UnsupportedProtocolVersion)
        {
            return new CloseDecision(CloseAnswer.ConnAck, (byte)MqttConnectReturnCode.UnacceptableProtocolVersion, DisconnectReason.ProtocolError);
        }

        return new CloseDecision(attached && v5 ? CloseAnswer.Disconnect : CloseAnswer.CloseOnly, (byte)reason, DisconnectReason.ProtocolError);
    }

    /// <summary>The server closes a connected client with <paramref name="reason"/>.</summary>
    public static CloseDecision ForServerClose(MqttReasonCode reason, bool v5) =>
        new(v5 ? CloseAnswer.Disconnect : CloseAnswer.CloseOnly, (byte)reason, EndReasonOf(reason));

    /// <summary>
    /// A CONNECT refused with <paramref name="v5Reason"/> (v5) or <paramref name="v3Code"/> (3.1.1 and 3.1). Its
    /// <see cref="CloseDecision.EndReason"/> is never counted: a client refused was never connected.
    /// </summary>
    public static CloseDecision ForRefusedConnect(MqttReasonCode v5Reason, MqttConnectReturnCode v3Code, bool closeOnly, bool v5) =>
        new(closeOnly ? CloseAnswer.CloseOnly : CloseAnswer.ConnAck, v5 ? (byte)v5Reason : (byte)v3Code, DisconnectReason.ServerError);

    /// <summary>A CONNECT refused as <paramref name="refusal"/> says (see <see cref="ForRefusedConnect(MqttReasonCode, MqttConnectReturnCode, bool, bool)"/>).</summary>
    public static CloseDecision ForRefusedConnect(ConnectRefusal refusal, bool v5) =>
        ForRefusedConnect(refusal.V5Reason, refusal.V3Code, refusal.CloseOnly, v5);

    /// <summary>The packet <paramref name="decision"/> writes before the close, or null.</summary>
    public static MqttPacket? PacketOf(CloseDecision decision) => decision.Answer switch
    {
        CloseAnswer.ConnAck => new MqttConnAckPacket { ReasonCode = decision.Code },
        CloseAnswer.Disconnect => new MqttDisconnectPacket { ReasonCode = (MqttReasonCode)decision.Code },
        _ => null,
    };

    /// <summary>The reason a server-initiated close with <paramref name="code"/> is counted under.</summary>
    public static DisconnectReason EndReasonOf(MqttReasonCode code) => code switch
    {
        MqttReasonCode.KeepAliveTimeout => DisconnectReason.KeepAliveTimeout,
        MqttReasonCode.SessionTakenOver => DisconnectReason.SessionTakenOver,
        MqttReasonCode.ServerShuttingDown => DisconnectReason.ServerShutdown,
        MqttReasonCode.AdministrativeAction => DisconnectReason.Administrative,
        _ => DisconnectReason.ServerError,
    };
}
