using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Channel;

/// <summary>A CONNECT refused: the v5 reason code, the 3.1.1 return code, whether to close without a CONNACK, and why (for the log).</summary>
public readonly record struct ConnectRefusal(MqttReasonCode V5Reason, MqttConnectReturnCode V3Code, bool CloseOnly, string Why);

/// <summary>What a CONNECT may open: the client id to use (and the one to return in CONNACK when the server chose it).</summary>
public readonly record struct ConnectAdmission(string ClientId, string? AssignedClientId);

/// <summary>
/// What an accepted CONNECT holds the connection to: the session expiry granted, the keep alive, and what the client
/// said it accepts (Maximum Packet Size, Topic Alias Maximum and Receive Maximum; the protocol's limits in 3.1.1).
/// </summary>
public readonly record struct ConnectionTerms(
    uint GrantedExpiry, KeepAliveGrant KeepAlive, uint ClientMaxPacketSize, ushort ClientTopicAliasMaximum, ushort ClientReceiveMaximum);

/// <summary>A DISCONNECT's effect on its session: the new expiry (when it asks for one) and whether the will goes out.</summary>
public readonly record struct DisconnectEffect(uint? NewExpiry, bool PublishWill);

/// <summary>
/// The protocol rules of CONNECT, CONNACK and DISCONNECT (MQTT-3.1, 3.2, 3.14; MQTT-v5.0 3.1, 3.2, 3.14), apart from the
/// connection actor that applies them: what a CONNECT may open, the session expiry granted, the CONNACK's v5
/// properties, and what a DISCONNECT changes. Pure: the actor brings the packet and the options and carries out the
/// answer (ClientConnectionActor.Connect.cs).
/// </summary>
public static class ConnectRules
{
    /// <summary>
    /// Checks a CONNECT that reached the broker within its limits: its client id (assigned when empty and allowed), its
    /// will topic, and its authentication method. <paramref name="newId"/> makes an id up (a fresh one each call).
    /// </summary>
    public static ConnectRefusal? Admit(MqttConnectPacket connect, Func<string> newId, out ConnectAdmission admission)
    {
        var v5 = connect.ProtocolVersion == MqttProtocolVersion.V500;
        admission = new ConnectAdmission(connect.ClientId, null);
        if (connect.ClientId.Length == 0)
        {
            if (v5)
            {
                // MQTT-v5.0 3.2.2.3.7: the server assigns a client identifier and returns it in CONNACK.
                var id = newId();
                admission = new ConnectAdmission(id, id);
            }
            else if (connect.CleanStart && connect.ProtocolVersion == MqttProtocolVersion.V311)
            {
                // [MQTT-3.1.3-6] 3.1.1 allows an empty id with Clean Session 1; the server makes one up (not returned).
                admission = new ConnectAdmission(newId(), null);
            }
            else
            {
                // [MQTT-3.1.3-8] empty id with Clean Session 0 (or MQTT 3.1): identifier rejected.
                return new ConnectRefusal(MqttReasonCode.ClientIdentifierNotValid, MqttConnectReturnCode.IdentifierRejected, false,
                    "sent an empty client id with " + (connect.CleanStart ? "MQTT 3.1" : "Clean Session 0"));
            }
        }

        if (connect.Will is { } will && !MqttTopic.IsValidTopicName(will.Topic))
        {
            // 3.1.1 has no return code for it: the connection is closed without CONNACK.
            return new ConnectRefusal(MqttReasonCode.TopicNameInvalid, MqttConnectReturnCode.IdentifierRejected, !v5,
                $"sent an invalid will topic '{will.Topic}'");
        }

        if (connect.AuthenticationMethod is not null)
        {
            // No enhanced authentication methods are offered (MQTT-v5.0 4.12).
            return new ConnectRefusal(MqttReasonCode.BadAuthenticationMethod, MqttConnectReturnCode.NotAuthorized, false,
                $"asked for authentication method '{connect.AuthenticationMethod}', which is not offered");
        }

        return null;
    }

    /// <summary>
    /// The session expiry granted: v5 the client's, capped by <see cref="SessionOptions.MaxSessionExpiry"/> (never
    /// expiring only when both say so); 3.1.1 none for Clean Session 1, otherwise
    /// <see cref="SessionOptions.PersistentSessionExpiry"/>.
    /// </summary>
    public static uint GrantExpiry(MqttConnectPacket connect, SessionOptions sessions)
    {
        if (connect.ProtocolVersion != MqttProtocolVersion.V500)
        {
            return connect.CleanStart ? 0 : (uint)Math.Min(sessions.PersistentSessionExpiry, uint.MaxValue - 1);
        }

        if (connect.SessionExpiryInterval == uint.MaxValue && sessions.MaxSessionExpiry >= uint.MaxValue)
        {
            return uint.MaxValue;
        }

        return (uint)Math.Min(connect.SessionExpiryInterval, sessions.MaxSessionExpiry);
    }

    /// <summary>
    /// The terms of an authenticated CONNECT: the expiry (<see cref="GrantExpiry"/>), the keep alive
    /// (<see cref="KeepAlivePolicy.Resolve"/>), and the client's limits: its Maximum Packet Size (MQTT-v5.0 3.1.2.11.4,
    /// none means the protocol's), its Topic Alias Maximum (3.1.2.11.5; 0, no aliases, when absent or in 3.1.1) and its
    /// Receive Maximum (3.1.2.11.3; 65,535 when absent or in 3.1.1).
    /// </summary>
    public static ConnectionTerms Terms(MqttConnectPacket connect, MqttOptions mqtt, SessionOptions sessions)
    {
        var v5 = connect.ProtocolVersion == MqttProtocolVersion.V500;
        return new ConnectionTerms(
            GrantExpiry(connect, sessions),
            KeepAlivePolicy.Resolve(connect.KeepAlive, v5, mqtt.ServerKeepAlive, mqtt.MaxKeepAlive),
            connect.MaximumPacketSize ?? uint.MaxValue,
            v5 ? connect.TopicAliasMaximum : (ushort)0,
            v5 ? connect.ReceiveMaximum ?? ushort.MaxValue : ushort.MaxValue);
    }

    /// <summary>The CONNACK of an accepted CONNECT: for v5 with what the server offers and what it changed.</summary>
    public static MqttConnAckPacket ConnAck(
        MqttConnectPacket connect, bool sessionPresent, ConnectAdmission admission, uint grantedExpiry, KeepAliveGrant keepAlive,
        MqttOptions mqtt)
    {
        var connack = new MqttConnAckPacket { SessionPresent = sessionPresent };
        if (connect.ProtocolVersion != MqttProtocolVersion.V500)
        {
            return connack;
        }

        return connack with
        {
            AssignedClientIdentifier = admission.AssignedClientId,
            ReceiveMaximum = (ushort)mqtt.ReceiveMaximum,
            // At the protocol's limit the property is left out ("no limit beyond the protocol's", MQTT-v5.0
            // 3.2.2.3.6): paho refuses a CONNACK whose value is above 268,435,455.
            MaximumPacketSize = mqtt.MaxPacketSize > 268_435_455 ? null : (uint)mqtt.MaxPacketSize,
            TopicAliasMaximum = (ushort)mqtt.TopicAliasMaximum,
            SessionExpiryInterval = grantedExpiry != connect.SessionExpiryInterval ? grantedExpiry : null,
            ServerKeepAlive = keepAlive.ServerKeepAlive,
            RetainAvailable = true,
            WildcardSubscriptionAvailable = true,
            SubscriptionIdentifiersAvailable = true,
            SharedSubscriptionAvailable = true,
        };
    }

    /// <summary>
    /// A DISCONNECT from the client: null when it breaks a rule (a session opened with expiry 0 cannot be given one at
    /// DISCONNECT, [MQTT-3.14.2-2]; a protocol error), otherwise its effect. A normal DISCONNECT discards the will
    /// [MQTT-3.14.4-3]; v5 reason 0x04 asks for it to be published.
    /// </summary>
    public static DisconnectEffect? Disconnect(MqttConnectPacket connect, MqttDisconnectPacket disconnect, SessionOptions sessions) =>
        Disconnect(connect.ProtocolVersion, connect.SessionExpiryInterval, disconnect, sessions);

    /// <summary>The same, from the CONNECT's protocol version and the session expiry it asked for.</summary>
    public static DisconnectEffect? Disconnect(MqttProtocolVersion version, uint requestedExpiry, MqttDisconnectPacket disconnect, SessionOptions sessions)
    {
        if (version != MqttProtocolVersion.V500)
        {
            return new DisconnectEffect(null, false);
        }

        uint? newExpiry = null;
        if (disconnect.SessionExpiryInterval is { } requested)
        {
            if (requestedExpiry == 0 && requested != 0)
            {
                return null;
            }

            newExpiry = (uint)Math.Min(requested, sessions.MaxSessionExpiry);
        }

        return new DisconnectEffect(newExpiry, disconnect.ReasonCode == MqttReasonCode.DisconnectWithWillMessage);
    }
}
