using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class ConnectRulesSpecs
{
    private static int _ids;

    private static string NewId() => "made-" + Interlocked.Increment(ref _ids);

    private static MqttConnectPacket Connect(MqttProtocolVersion version, string clientId = "c", bool cleanStart = true, uint expiry = 0) =>
        new() { ProtocolVersion = version, ClientId = clientId, CleanStart = cleanStart, SessionExpiryInterval = expiry };

    [Fact]
    public void An_empty_client_id_should_be_assigned_and_returned_in_v5()
    {
        Assert.Null(ConnectRules.Admit(Connect(MqttProtocolVersion.V500, "", cleanStart: false), NewId, out var admission));
        Assert.StartsWith("made-", admission.ClientId);
        Assert.Equal(admission.ClientId, admission.AssignedClientId); // MQTT-v5.0 3.2.2.3.7
    }

    [Fact]
    public void An_empty_client_id_should_be_made_up_for_a_clean_3_1_1_session_without_returning_it()
    {
        Assert.Null(ConnectRules.Admit(Connect(MqttProtocolVersion.V311, ""), NewId, out var admission));
        Assert.StartsWith("made-", admission.ClientId);
        Assert.Null(admission.AssignedClientId); // 3.1.1's CONNACK has no place for it [MQTT-3.1.3-6]
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, false)] // [MQTT-3.1.3-8] Clean Session 0
    [InlineData(MqttProtocolVersion.V310, true)] // MQTT 3.1 requires a client id
    public void An_empty_client_id_should_be_rejected_otherwise(MqttProtocolVersion version, bool cleanStart)
    {
        var refusal = ConnectRules.Admit(Connect(version, "", cleanStart), NewId, out _);
        Assert.Equal(MqttConnectReturnCode.IdentifierRejected, refusal!.Value.V3Code);
        Assert.False(refusal.Value.CloseOnly);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500, false)]
    [InlineData(MqttProtocolVersion.V311, true)] // no return code for it: closed without CONNACK
    public void An_invalid_will_topic_should_be_refused(MqttProtocolVersion version, bool closeOnly)
    {
        var connect = Connect(version) with { Will = new MqttWill { Topic = "a/+/b", Payload = ReadOnlyMemory<byte>.Empty } };
        var refusal = ConnectRules.Admit(connect, NewId, out _);
        Assert.Equal(MqttReasonCode.TopicNameInvalid, refusal!.Value.V5Reason);
        Assert.Equal(closeOnly, refusal.Value.CloseOnly);
    }

    [Fact]
    public void Enhanced_authentication_should_be_refused_as_not_offered()
    {
        var refusal = ConnectRules.Admit(Connect(MqttProtocolVersion.V500) with { AuthenticationMethod = "SCRAM-SHA-1" }, NewId, out _);
        Assert.Equal(MqttReasonCode.BadAuthenticationMethod, refusal!.Value.V5Reason);
        Assert.Contains("SCRAM-SHA-1", refusal.Value.Why);
    }

    [Fact]
    public void The_granted_expiry_should_be_capped_by_the_server_and_never_expiring_only_when_both_allow_it()
    {
        var sessions = new SessionOptions { MaxSessionExpiry = 3600, PersistentSessionExpiry = 7200 };
        Assert.Equal(3600u, ConnectRules.GrantExpiry(Connect(MqttProtocolVersion.V500, expiry: uint.MaxValue), sessions));
        Assert.Equal(60u, ConnectRules.GrantExpiry(Connect(MqttProtocolVersion.V500, expiry: 60), sessions));
        Assert.Equal(uint.MaxValue, ConnectRules.GrantExpiry(
            Connect(MqttProtocolVersion.V500, expiry: uint.MaxValue), sessions with { MaxSessionExpiry = uint.MaxValue }));

        // 3.1.1: Clean Session 1 ends with the connection; 0 lasts the configured time.
        Assert.Equal(0u, ConnectRules.GrantExpiry(Connect(MqttProtocolVersion.V311, cleanStart: true), sessions));
        Assert.Equal(7200u, ConnectRules.GrantExpiry(Connect(MqttProtocolVersion.V311, cleanStart: false), sessions));
    }

    [Fact]
    public void The_v5_connack_should_name_the_assigned_id_and_a_changed_expiry_only()
    {
        var mqtt = new MqttOptions();
        var admission = new ConnectAdmission("auto-1", "auto-1");
        var keepAlive = new KeepAliveGrant(30, 30);
        var changed = ConnectRules.ConnAck(Connect(MqttProtocolVersion.V500, expiry: uint.MaxValue), true, admission, 3600, keepAlive, mqtt);
        Assert.True(changed.SessionPresent);
        Assert.Equal("auto-1", changed.AssignedClientIdentifier);
        Assert.Equal(3600u, changed.SessionExpiryInterval);
        Assert.Equal((ushort)30, changed.ServerKeepAlive);

        var same = ConnectRules.ConnAck(Connect(MqttProtocolVersion.V500, expiry: 60), false, new ConnectAdmission("c", null), 60,
            new KeepAliveGrant(60, null), mqtt);
        Assert.Null(same.SessionExpiryInterval);
        Assert.Null(same.AssignedClientIdentifier);

        var v311 = ConnectRules.ConnAck(Connect(MqttProtocolVersion.V311), true, admission, 0, keepAlive, mqtt);
        Assert.Equal(new MqttConnAckPacket { SessionPresent = true }, v311);
    }

    [Fact]
    public void A_disconnect_should_not_give_a_session_opened_with_expiry_0_an_expiry()
    {
        var sessions = new SessionOptions { MaxSessionExpiry = 3600 };
        var zero = Connect(MqttProtocolVersion.V500, expiry: 0);
        Assert.Null(ConnectRules.Disconnect(zero, new MqttDisconnectPacket { SessionExpiryInterval = 10 }, sessions)); // [MQTT-3.14.2-2]
        Assert.Equal(new DisconnectEffect(0, false), ConnectRules.Disconnect(zero, new MqttDisconnectPacket { SessionExpiryInterval = 0 }, sessions));

        var some = Connect(MqttProtocolVersion.V500, expiry: 60);
        Assert.Equal(new DisconnectEffect(3600, false),
            ConnectRules.Disconnect(some, new MqttDisconnectPacket { SessionExpiryInterval = 99_999 }, sessions));
        Assert.Equal(new DisconnectEffect(null, true),
            ConnectRules.Disconnect(some, new MqttDisconnectPacket { ReasonCode = MqttReasonCode.DisconnectWithWillMessage }, sessions));
        Assert.Equal(new DisconnectEffect(null, false),
            ConnectRules.Disconnect(Connect(MqttProtocolVersion.V311), new MqttDisconnectPacket(), sessions)); // [MQTT-3.14.4-3]
    }
}
