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
}
