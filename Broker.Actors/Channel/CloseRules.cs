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
///   session lost 0x89): DISCONNECT with the reason in v5, a plain close in 3.1.1.</item>
/// <item>A refused CONNECT: CONNACK with the v5 reason or the 3.1.1 return code, unless the refusal closes only (a
///   3.1.1 client's invalid will topic has no return code).</item>
/// </list>
/// Pure: the actor writes, detaches and closes as told.
/// </summary>
public static class CloseRules
{
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
