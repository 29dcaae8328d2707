using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

// Partial: CONNECT and CONNACK bodies (MQTT-3.1.1 3.1, 3.2; MQTT-v5.0 3.1, 3.2).
public sealed partial class MqttPacketDecoder
{
    private static MqttConnectPacket DecodeConnect(ref MqttBufferReader reader)
    {
        // 3.1.2.1 Protocol Name and 3.1.2.2 Protocol Level. The level decides the layout of everything after it.
        var protocolName = reader.ReadString();
        var level = reader.ReadByte();
        var version = (protocolName, level) switch
        {
            ("MQTT", 4) => MqttProtocolVersion.V311,
            ("MQTT", 5) => MqttProtocolVersion.V500,
            ("MQIsdp", 3) => MqttProtocolVersion.V310,
            ("MQTT", _) or ("MQIsdp", _) => throw new MqttProtocolException(
                MqttReasonCode.UnsupportedProtocolVersion,
                $"unsupported protocol level {level} for protocol name \"{protocolName}\" [MQTT-3.1.2-2]"),
            _ => throw new MqttProtocolException(
                MqttReasonCode.UnsupportedProtocolVersion,
                $"unknown protocol name \"{protocolName}\" [MQTT-3.1.2-1]"),
        };
        var v5 = version == MqttProtocolVersion.V500;

        // 3.1.2.3 Connect Flags.
        var flags = reader.ReadByte();
        if ((flags & 0x01) != 0)
        {
            throw MqttProtocolException.Malformed("CONNECT reserved flag bit 0 must be 0 [MQTT-3.1.2-3]");
        }

        var cleanStart = (flags & 0x02) != 0;
        var willFlag = (flags & 0x04) != 0;
        var willQoS = (flags >> 3) & 0x03;
        var willRetain = (flags & 0x20) != 0;
        var passwordFlag = (flags & 0x40) != 0;
        var usernameFlag = (flags & 0x80) != 0;
        if (!willFlag && (willQoS != 0 || willRetain))
        {
            throw MqttProtocolException.Malformed(
                "CONNECT Will QoS and Will Retain must be 0 when the Will Flag is 0 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]");
        }

        if (willQoS == 3)
        {
            throw MqttProtocolException.Malformed("CONNECT Will QoS must not be 3 [MQTT-3.1.2-14]");
        }

        if (passwordFlag && !usernameFlag && !v5)
        {
            throw MqttProtocolException.Malformed("CONNECT Password Flag set without User Name Flag [MQTT-3.1.2-22]");
        }

        var keepAlive = reader.ReadUInt16();
        var properties = default(MqttPropertyBag);
        if (v5)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.Connect, ref properties);
        }

        // 3.1.3 Payload: Client Identifier, [Will Properties, Will Topic, Will Payload], [User Name], [Password].
        var clientId = reader.ReadString();
        MqttWill? will = null;
        if (willFlag)
        {
            var willProperties = default(MqttPropertyBag);
            if (v5)
            {
                MqttPropertyReader.Read(ref reader, MqttPropertyContext.Will, ref willProperties);
            }

            var willTopic = reader.ReadString();
            var willPayload = reader.ReadBinary();
            will = new MqttWill
            {
                Topic = willTopic,
                Payload = willPayload,
                QoS = (MqttQoS)willQoS,
                Retain = willRetain,
                DelayInterval = willProperties.WillDelayInterval ?? 0,
                Properties = willProperties.ToMessageProperties(),
            };
        }

        var username = usernameFlag ? reader.ReadString() : null;
        var password = passwordFlag ? reader.ReadBinary() : null;
        reader.EnsureEnd("CONNECT");

        return new MqttConnectPacket
        {
            ProtocolName = protocolName,
            ProtocolVersion = version,
            ClientId = clientId,
            CleanStart = cleanStart,
            KeepAlive = keepAlive,
            Username = username,
            Password = MqttPropertyBag.AsMemory(password),
            Will = will,
            SessionExpiryInterval = properties.SessionExpiryInterval ?? 0,
            ReceiveMaximum = properties.ReceiveMaximum,
            MaximumPacketSize = properties.MaximumPacketSize,
            TopicAliasMaximum = properties.TopicAliasMaximum ?? 0,
            RequestResponseInformation = properties.RequestResponseInformation == 1,
            RequestProblemInformation = properties.RequestProblemInformation != 0,
            AuthenticationMethod = properties.AuthenticationMethod,
            AuthenticationData = MqttPropertyBag.AsMemory(properties.AuthenticationData),
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }

    private static MqttConnAckPacket DecodeConnAck(ref MqttBufferReader reader, bool v5)
    {
        var acknowledgeFlags = reader.ReadByte();
        if ((acknowledgeFlags & 0xFE) != 0)
        {
            throw MqttProtocolException.Malformed("CONNACK Acknowledge Flags bits 7-1 are reserved [MQTT-3.2.2-1]");
        }

        var reasonCode = reader.ReadByte();
        var properties = default(MqttPropertyBag);
        if (v5)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.ConnAck, ref properties);
        }

        reader.EnsureEnd("CONNACK");
        return new MqttConnAckPacket
        {
            SessionPresent = (acknowledgeFlags & 0x01) != 0,
            ReasonCode = reasonCode,
            SessionExpiryInterval = properties.SessionExpiryInterval,
            ReceiveMaximum = properties.ReceiveMaximum,
            MaximumQoS = properties.MaximumQoS,
            RetainAvailable = properties.RetainAvailable is { } retain ? retain == 1 : null,
            MaximumPacketSize = properties.MaximumPacketSize,
            AssignedClientIdentifier = properties.AssignedClientIdentifier,
            TopicAliasMaximum = properties.TopicAliasMaximum,
            ReasonString = properties.ReasonString,
            WildcardSubscriptionAvailable = properties.WildcardSubscriptionAvailable is { } w ? w == 1 : null,
            SubscriptionIdentifiersAvailable = properties.SubscriptionIdentifierAvailable is { } s ? s == 1 : null,
            SharedSubscriptionAvailable = properties.SharedSubscriptionAvailable is { } sh ? sh == 1 : null,
            ServerKeepAlive = properties.ServerKeepAlive,
            ResponseInformation = properties.ResponseInformation,
            ServerReference = properties.ServerReference,
            AuthenticationMethod = properties.AuthenticationMethod,
            AuthenticationData = MqttPropertyBag.AsMemory(properties.AuthenticationData),
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }
}
