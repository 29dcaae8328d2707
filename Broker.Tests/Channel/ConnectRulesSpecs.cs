using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Channel;

namespace Broker.Tests.Channel;

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

    [Fact]
    public void The_terms_of_a_v5_connect_should_hold_the_clients_limits()
    {
        var connect = Connect(MqttProtocolVersion.V500, expiry: 60) with
        {
            KeepAlive = 100, MaximumPacketSize = 2048, TopicAliasMaximum = 8, ReceiveMaximum = 20,
        };
        var terms = ConnectRules.Terms(connect, new MqttOptions { MaxKeepAlive = 60 }, new SessionOptions { MaxSessionExpiry = 30 });
        Assert.Equal(new ConnectionTerms(30, new KeepAliveGrant(60, 60), 2048, 8, 20), terms);
    }

    [Fact]
    public void The_terms_of_a_v5_connect_without_limits_should_be_the_protocols()
    {
        var terms = ConnectRules.Terms(Connect(MqttProtocolVersion.V500, expiry: 0), new MqttOptions(), new SessionOptions());
        Assert.Equal(uint.MaxValue, terms.ClientMaxPacketSize);
        Assert.Equal((ushort)0, terms.ClientTopicAliasMaximum); // no aliases to a client that named no maximum
        Assert.Equal(ushort.MaxValue, terms.ClientReceiveMaximum);
    }

    [Fact]
    public void A_3_1_1_connect_should_take_no_aliases_and_no_receive_maximum()
    {
        var connect = Connect(MqttProtocolVersion.V311, cleanStart: false) with { TopicAliasMaximum = 8, ReceiveMaximum = 20 };
        var terms = ConnectRules.Terms(connect, new MqttOptions(), new SessionOptions { PersistentSessionExpiry = 7200 });
        Assert.Equal((ushort)0, terms.ClientTopicAliasMaximum);
        Assert.Equal(ushort.MaxValue, terms.ClientReceiveMaximum);
        Assert.Equal(7200u, terms.GrantedExpiry);
    }

    [Fact]
    public void A_disconnect_may_shorten_or_end_a_sessions_expiry_and_only_0x04_publishes_the_will()
    {
        var sessions = new SessionOptions { MaxSessionExpiry = 3600 };
        var some = Connect(MqttProtocolVersion.V500, expiry: 60);
        Assert.Equal(new DisconnectEffect(0, false), ConnectRules.Disconnect(some, new MqttDisconnectPacket { SessionExpiryInterval = 0 }, sessions));
        Assert.Equal(new DisconnectEffect(10, true), ConnectRules.Disconnect(some,
            new MqttDisconnectPacket { SessionExpiryInterval = 10, ReasonCode = MqttReasonCode.DisconnectWithWillMessage }, sessions));
        // A normal DISCONNECT discards the will [MQTT-3.14.4-3]; so does any reason other than 0x04.
        Assert.Equal(new DisconnectEffect(null, false), ConnectRules.Disconnect(some, new MqttDisconnectPacket(), sessions));
        Assert.Equal(new DisconnectEffect(null, false), ConnectRules.Disconnect(some,
            new MqttDisconnectPacket { ReasonCode = MqttReasonCode.UnspecifiedError }, sessions));
    }
}
