using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Channel;

/// <summary>Where a client connection is in its life; the connection actor behaves per state.</summary>
public enum ConnectionState : byte
{
    /// <summary>Accepted socket, no CONNECT yet (the node's sweep closes it after <c>Mqtt:ConnectTimeout</c>).</summary>
    AwaitingConnect,

    /// <summary>CONNECT received and admitted; the authenticator (and the will's ACL) decides.</summary>
    Authenticating,

    /// <summary>Authenticated; the session entity is asked for the client's session. No CONNACK yet.</summary>
    Attaching,

    /// <summary>CONNACK sent; packets flow both ways.</summary>
    Connected,

    /// <summary>The session's node left or failed: a persistent session is asked for again where it recovers.</summary>
    Reattaching,

    /// <summary>Closing: nothing more is read or written; the actor stops.</summary>
    Closing,
}

/// <summary>What moves a connection from one <see cref="ConnectionState"/> to another.</summary>
public enum ConnectionEvent : byte
{
    /// <summary>A CONNECT passed the connection limit and <see cref="ConnectRules.Admit"/>.</summary>
    ConnectAdmitted,

    /// <summary>The authenticator allowed the client (and its will topic).</summary>
    Authenticated,

    /// <summary>The session entity answered the attach (CONNACK goes out on the first one).</summary>
    SessionAttached,

    /// <summary>A persistent session's entity stopped (its node left): ask for it again.</summary>
    SessionMoved,

    /// <summary>A dormant clean session is asked to start (a packet needs it): wait for it as for a moved one.</summary>
    SessionStarting,

    /// <summary>The connection closes, for any reason (refused, DISCONNECT, violation, keep alive, takeover, socket).</summary>
    Closed,
}

/// <summary>A step of the lifecycle: the state to move to, or a refusal (<see cref="Legal"/> false, <see cref="To"/> unchanged).</summary>
public readonly record struct LifecycleStep(ConnectionState To, bool Legal);

/// <summary>What a connection does with a client packet its state has no handler for.</summary>
public enum PacketVerdict : byte
{
    /// <summary>The state handles it.</summary>
    Handle,

    /// <summary>Wait for the session: handled, in order, once connected.</summary>
    Stash,

    /// <summary>Close the socket without answering (no CONNACK yet, [MQTT-3.1.0-1]).</summary>
    CloseWithoutAnswer,

    /// <summary>A protocol violation: DISCONNECT with <see cref="PacketAnswer.Reason"/> (v5) and close.</summary>
    ProtocolViolation,

    /// <summary>Closing: nothing is read any more.</summary>
    Ignore,
}

/// <summary>The verdict on a client packet, with the reason code and the log's why for a violation.</summary>
public readonly record struct PacketAnswer(PacketVerdict Verdict, MqttReasonCode Reason = MqttReasonCode.Success, string? Why = null);

/// <summary>
/// The life of a client connection as a checked transition table, apart from the actor that lives it
/// (ClientConnectionActor). MQTT-3.1: "After a Network Connection is established by a Client to a Server, the first
/// Packet sent from the Client to the Server MUST be a CONNECT Packet" [MQTT-3.1.0-1], and "A Client can only send the
/// CONNECT Packet once over a Network Connection" [MQTT-3.1.0-2].
/// <code>
///                    ConnectAdmitted                  Authenticated             SessionAttached
///   AwaitingConnect ─────────────────► Authenticating ──────────────► Attaching ───────────────► Connected
///                                                                                                 │     ▲
///                                                                   SessionMoved, SessionStarting │     │ SessionAttached
///                                                                                                 ▼     │
///                                                                                               Reattaching
///
///   any state ──Closed──► Closing   (Closing absorbs Closed; every other event from it is refused)
/// </code>
/// Any other (state, event) pair is refused: it would mean the actor lost track of its connection. Pure: no actor, no
/// clock; <see cref="OnPacket"/> says what a state does with a client packet it does not handle itself.
/// </summary>
public static class ConnectionLifecycle
{
    /// <summary>The state <paramref name="from"/> moves to on <paramref name="event"/>, or a refusal when the move is illegal.</summary>
    public static LifecycleStep Transition(ConnectionState from, ConnectionEvent @event)
    {
        var to = (from, @event) switch
        {
            (_, ConnectionEvent.Closed) => ConnectionState.Closing,
            (ConnectionState.AwaitingConnect, ConnectionEvent.ConnectAdmitted) => ConnectionState.Authenticating,
            (ConnectionState.Authenticating, ConnectionEvent.Authenticated) => ConnectionState.Attaching,
            (ConnectionState.Attaching, ConnectionEvent.SessionAttached) => ConnectionState.Connected,
            (ConnectionState.Connected, ConnectionEvent.SessionMoved) => ConnectionState.Reattaching,
            (ConnectionState.Connected, ConnectionEvent.SessionStarting) => ConnectionState.Reattaching,
            (ConnectionState.Reattaching, ConnectionEvent.SessionAttached) => ConnectionState.Connected,
            _ => (ConnectionState?)null,
        };

        return to is { } legal ? new LifecycleStep(legal, true) : new LifecycleStep(from, false);
    }

    /// <summary>
    /// What <paramref name="state"/> does with a packet of type <paramref name="type"/> from the client, for the
    /// packets its behaviour has no handler of its own for. Before CONNECT anything but CONNECT closes the socket
    /// without an answer [MQTT-3.1.0-1]; between CONNECT and CONNACK packets wait (a client may send them right behind
    /// its CONNECT, MQTT-v5.0 3.1.4); once connected a second CONNECT [MQTT-3.1.0-2], an AUTH without an authentication
    /// method (MQTT-v5.0 4.12) and the packets only a server sends are protocol errors (0x82).
    /// </summary>
    public static PacketAnswer OnPacket(ConnectionState state, MqttPacketType type) => state switch
    {
        ConnectionState.AwaitingConnect => type == MqttPacketType.Connect
            ? new PacketAnswer(PacketVerdict.Handle)
            : new PacketAnswer(PacketVerdict.CloseWithoutAnswer, MqttReasonCode.ProtocolError, "sent {0} before CONNECT"),
        ConnectionState.Authenticating or ConnectionState.Attaching => new PacketAnswer(PacketVerdict.Stash),
        ConnectionState.Reattaching => type == MqttPacketType.PingReq ? new PacketAnswer(PacketVerdict.Handle) : new PacketAnswer(PacketVerdict.Stash),
        ConnectionState.Connected => type switch
        {
            MqttPacketType.Connect => Violation("second CONNECT [MQTT-3.1.0-2]"),
            MqttPacketType.Auth => Violation("AUTH without an authentication method"),
            MqttPacketType.ConnAck or MqttPacketType.SubAck or MqttPacketType.UnsubAck or MqttPacketType.PingResp =>
                Violation("a client may not send " + type),
            _ => new PacketAnswer(PacketVerdict.Handle),
        },
        _ => new PacketAnswer(PacketVerdict.Ignore),
    };

    /// <summary>
    /// True for the client packets that a dormant clean session (<c>Sessions:StartCleanSessionsOnDemand</c>) must start
    /// for: a subscription change, a QoS 2 message (its session keeps the packet id until PUBREL), and the
    /// acknowledgements of messages sent (a client that acknowledges what it was never sent is answered by the session
    /// as before). QoS 0 and 1 messages, PINGREQ and DISCONNECT need no session.
    /// </summary>
    public static bool NeedsStartedSession(MqttPacket packet) => packet switch
    {
        MqttPublishPacket publish => publish.QoS == MqttQoS.ExactlyOnce,
        MqttSubscribePacket or MqttUnsubscribePacket or MqttPubAckPacket or MqttPubRecPacket or MqttPubRelPacket or MqttPubCompPacket => true,
        _ => false,
    };

    private static PacketAnswer Violation(string why) => new(PacketVerdict.ProtocolViolation, MqttReasonCode.ProtocolError, why);

    /// <summary>
    /// What follows when the session entity of a connected client stops under it: a persistent session (granted expiry
    /// above 0) is in the journal and is asked for again wherever it recovers, without troubling the client; a clean
    /// one lived only in memory, so the client must start over (DISCONNECT 0x89 in v5: 0x88 is a CONNACK code only,
    /// MQTT-v5.0 3.14.2.1).
    /// </summary>
    public static bool ReattachesWhenSessionEnds(uint grantedExpiry) => grantedExpiry > 0;
}
