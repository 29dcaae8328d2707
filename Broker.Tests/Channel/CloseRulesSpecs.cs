using Broker.Channel;
using Broker.Cluster;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Tests.Channel;

/// <summary>What a client is told when its connection ends, and what the end is counted as.</summary>
public sealed class CloseRulesSpecs
{
    [Fact]
    public void An_unknown_protocol_level_should_be_answered_with_connack_0x01_then_closed()
    {
        // [MQTT-3.1.2-2] the server responds with CONNACK return code 0x01 (unacceptable protocol level) and disconnects.
        var close = CloseRules.ForViolation(MqttReasonCode.UnsupportedProtocolVersion, connectReceived: false, attached: false, v5: false);
        Assert.Equal(new CloseDecision(CloseAnswer.ConnAck, 0x01, DisconnectReason.ProtocolError), close);
        Assert.Equal(new MqttConnAckPacket { ReasonCode = 0x01 }, CloseRules.PacketOf(close));
    }

    [Fact]
    public void A_v5_client_with_a_session_should_be_told_the_violations_reason()
    {
        var close = CloseRules.ForViolation(MqttReasonCode.TopicAliasInvalid, connectReceived: true, attached: true, v5: true);
        Assert.Equal(new CloseDecision(CloseAnswer.Disconnect, 0x94, DisconnectReason.ProtocolError), close);
        Assert.Equal(new MqttDisconnectPacket { ReasonCode = MqttReasonCode.TopicAliasInvalid }, CloseRules.PacketOf(close));
    }

    [Theory]
    [InlineData(true, false, true)] // v5 before CONNACK: no DISCONNECT [MQTT-4.13.1-1]
    [InlineData(true, true, false)] // 3.1.1 has no server DISCONNECT
    [InlineData(false, false, true)] // a malformed first packet
    [InlineData(false, false, false)]
    public void Otherwise_a_violation_should_only_close(bool connectReceived, bool attached, bool v5)
    {
        var close = CloseRules.ForViolation(MqttReasonCode.MalformedPacket, connectReceived, attached, v5);
        Assert.Equal(new CloseDecision(CloseAnswer.CloseOnly, (byte)MqttReasonCode.MalformedPacket, DisconnectReason.ProtocolError), close);
        Assert.Null(CloseRules.PacketOf(close));
    }

    [Theory]
    [InlineData(MqttReasonCode.KeepAliveTimeout, DisconnectReason.KeepAliveTimeout)] // 0x8D [MQTT-3.1.2-24]
    [InlineData(MqttReasonCode.SessionTakenOver, DisconnectReason.SessionTakenOver)] // 0x8E
    [InlineData(MqttReasonCode.ServerShuttingDown, DisconnectReason.ServerShutdown)] // 0x8B
    [InlineData(MqttReasonCode.AdministrativeAction, DisconnectReason.Administrative)] // 0x98
    [InlineData(MqttReasonCode.ServerBusy, DisconnectReason.ServerError)] // 0x89: the session was lost
    public void A_server_close_should_tell_a_v5_client_why_and_just_close_a_3_1_1_one(MqttReasonCode reason, DisconnectReason counted)
    {
        var v5 = CloseRules.ForServerClose(reason, v5: true);
        Assert.Equal(new CloseDecision(CloseAnswer.Disconnect, (byte)reason, counted), v5);
        Assert.Equal(new MqttDisconnectPacket { ReasonCode = reason }, CloseRules.PacketOf(v5));

        var v311 = CloseRules.ForServerClose(reason, v5: false);
        Assert.Equal(CloseAnswer.CloseOnly, v311.Answer);
        Assert.Equal(counted, v311.EndReason);
        Assert.Null(CloseRules.PacketOf(v311));
    }

    [Fact]
    public void A_refused_connect_should_answer_with_the_code_of_its_version()
    {
        var v5 = CloseRules.ForRefusedConnect(MqttReasonCode.QuotaExceeded, MqttConnectReturnCode.ServerUnavailable, closeOnly: false, v5: true);
        Assert.Equal(new MqttConnAckPacket { ReasonCode = 0x97 }, CloseRules.PacketOf(v5));

        var v311 = CloseRules.ForRefusedConnect(MqttReasonCode.QuotaExceeded, MqttConnectReturnCode.ServerUnavailable, closeOnly: false, v5: false);
        Assert.Equal(new MqttConnAckPacket { ReasonCode = 0x03 }, CloseRules.PacketOf(v311));
    }

    [Fact]
    public void A_refusal_with_no_3_1_1_return_code_should_close_without_connack()
    {
        // An invalid will topic has no 3.1.1 return code (ConnectRules.Admit says close only).
        var close = CloseRules.ForRefusedConnect(MqttReasonCode.TopicNameInvalid, MqttConnectReturnCode.IdentifierRejected, closeOnly: true, v5: false);
        Assert.Equal(CloseAnswer.CloseOnly, close.Answer);
        Assert.Null(CloseRules.PacketOf(close));
    }

    // ---- the server's own refusals and closes, by name ----

    private static ConnectRefusal Refusal(string name) => name switch
    {
        nameof(CloseRules.ConnectionLimitReached) => CloseRules.ConnectionLimitReached,
        nameof(CloseRules.SessionDidNotAnswer) => CloseRules.SessionDidNotAnswer,
        nameof(CloseRules.AuthenticatorDidNotAnswer) => CloseRules.AuthenticatorDidNotAnswer,
        nameof(CloseRules.AuthenticatorFailed) => CloseRules.AuthenticatorFailed,
        nameof(CloseRules.NotAuthorized) => CloseRules.NotAuthorized,
        nameof(CloseRules.BadCredentials) => CloseRules.BadCredentials,
        nameof(CloseRules.WillNotAuthorized) => CloseRules.WillNotAuthorized,
        nameof(CloseRules.NodeStoppingBeforeConnAck) => CloseRules.NodeStoppingBeforeConnAck,
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private static MqttReasonCode ServerClose(string name) => name switch
    {
        nameof(CloseRules.SessionDidNotReturn) => CloseRules.SessionDidNotReturn,
        nameof(CloseRules.SessionStopped) => CloseRules.SessionStopped,
        nameof(CloseRules.TakenOver) => CloseRules.TakenOver,
        nameof(CloseRules.KeepAliveExpired) => CloseRules.KeepAliveExpired,
        nameof(CloseRules.OperatorClose) => CloseRules.OperatorClose,
        nameof(CloseRules.NodeStopping) => CloseRules.NodeStopping,
        nameof(CloseRules.NotStoredInTimeV311) => CloseRules.NotStoredInTimeV311,
        nameof(CloseRules.PublishRefusedV311) => CloseRules.PublishRefusedV311,
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [InlineData(nameof(CloseRules.ConnectionLimitReached), 0x97, 0x03)] // Quota exceeded; 3.1.1: Server unavailable
    [InlineData(nameof(CloseRules.SessionDidNotAnswer), 0x88, 0x03)] // Server unavailable
    [InlineData(nameof(CloseRules.AuthenticatorDidNotAnswer), 0x88, 0x03)]
    [InlineData(nameof(CloseRules.AuthenticatorFailed), 0x88, 0x03)]
    [InlineData(nameof(CloseRules.NotAuthorized), 0x87, 0x05)] // Not authorized
    [InlineData(nameof(CloseRules.BadCredentials), 0x86, 0x04)] // Bad user name or password
    [InlineData(nameof(CloseRules.WillNotAuthorized), 0x87, 0x05)]
    [InlineData(nameof(CloseRules.NodeStoppingBeforeConnAck), 0x88, 0x03)] // Server unavailable: 0x8B is DISCONNECT only
    public void A_connect_the_server_refuses_should_get_connack_with_the_v5_reason_or_its_3_1_1_return_code(string rule, byte v5Code, byte v311Code)
    {
        // MQTT-v5.0 3.2.2.2 Connect Reason Code; MQTT 3.1.1 3.2.2.3 Connect Return code (1 to 5).
        var refusal = Refusal(rule);
        Assert.Equal(new MqttConnAckPacket { ReasonCode = v5Code }, CloseRules.PacketOf(CloseRules.ForRefusedConnect(refusal, v5: true)));
        Assert.Equal(new MqttConnAckPacket { ReasonCode = v311Code }, CloseRules.PacketOf(CloseRules.ForRefusedConnect(refusal, v5: false)));
        Assert.Equal(v5Code, (byte)refusal.V5Reason); // counted in mqtt_connect_refused_total under the v5 reason
        Assert.InRange(v311Code, 1, 5);
    }

    [Theory]
    [InlineData(nameof(CloseRules.SessionDidNotReturn), 0x89, DisconnectReason.ServerError)] // Server busy: 0x88 is CONNACK only
    [InlineData(nameof(CloseRules.SessionStopped), 0x89, DisconnectReason.ServerError)]
    [InlineData(nameof(CloseRules.TakenOver), 0x8E, DisconnectReason.SessionTakenOver)]
    [InlineData(nameof(CloseRules.KeepAliveExpired), 0x8D, DisconnectReason.KeepAliveTimeout)] // [MQTT-3.1.2-24]
    [InlineData(nameof(CloseRules.OperatorClose), 0x98, DisconnectReason.Administrative)]
    [InlineData(nameof(CloseRules.NodeStopping), 0x8B, DisconnectReason.ServerShutdown)]
    public void A_connected_client_the_server_closes_should_hear_why_in_v5(string rule, byte code, DisconnectReason counted)
    {
        // MQTT-v5.0 3.14.2.1 Disconnect Reason Code; 3.1.1 has no server DISCONNECT: the socket is closed.
        var reason = ServerClose(rule);
        Assert.Equal(new MqttDisconnectPacket { ReasonCode = (MqttReasonCode)code }, CloseRules.PacketOf(CloseRules.ForServerClose(reason, v5: true)));
        Assert.Equal(new CloseDecision(CloseAnswer.CloseOnly, code, counted), CloseRules.ForServerClose(reason, v5: false));
    }

    [Theory]
    [InlineData(nameof(CloseRules.NotStoredInTimeV311), 0x80)] // a v5 client hears PUBACK 0x80 instead
    [InlineData(nameof(CloseRules.PublishRefusedV311), 0x97)] // a v5 client hears PUBACK/PUBREC 0x97 instead
    public void A_3_1_1_publisher_whose_message_was_not_taken_should_be_closed_with_nothing_said(string rule, byte code)
    {
        Assert.Equal(new CloseDecision(CloseAnswer.CloseOnly, code, DisconnectReason.ServerError), CloseRules.ForServerClose(ServerClose(rule), v5: false));
    }

    [Theory]
    [InlineData(ConnectionState.AwaitingConnect, NodeStoppingAnswer.CloseOnly)]
    [InlineData(ConnectionState.Authenticating, NodeStoppingAnswer.RefuseConnect)]
    [InlineData(ConnectionState.Attaching, NodeStoppingAnswer.RefuseConnect)]
    [InlineData(ConnectionState.Connected, NodeStoppingAnswer.Disconnect)]
    // CONNACK was sent; the connection holds no session while it asks for it again after a move, and the client must
    // still hear 0x8B, not a bare close.
    [InlineData(ConnectionState.Reattaching, NodeStoppingAnswer.Disconnect)]
    [InlineData(ConnectionState.Closing, NodeStoppingAnswer.CloseOnly)]
    public void A_node_stopping_should_tell_every_client_that_sent_a_connect_to_go_elsewhere(ConnectionState state, NodeStoppingAnswer answer)
    {
        Assert.Equal(answer, CloseRules.OnNodeStopping(state));
    }

    [Fact]
    public void A_disconnect_raising_a_zero_session_expiry_should_be_a_protocol_error()
    {
        // [MQTT-3.14.2-2]
        var close = CloseRules.ForViolation(CloseRules.ExpiryRaisedFromZero, connectReceived: true, attached: true, v5: true);
        Assert.Equal(new MqttDisconnectPacket { ReasonCode = MqttReasonCode.ProtocolError }, CloseRules.PacketOf(close));
    }
}
