namespace Broker.Protocol.Codec;

/// <summary>
/// Which v5 reason codes each packet may carry (MQTT-v5.0 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3,
/// 3.14.2.1, 3.15.2.1); a code outside the packet's list is a Protocol Error. 3.1.1 SUBACK return codes are
/// 0x00, 0x01, 0x02 and 0x80 only [MQTT-3.9.3-2].
/// </summary>
internal static class MqttReasonCodeRules
{
    public static void EnsureValid(MqttPacketType type, byte code)
    {
        var valid = type switch
        {
            MqttPacketType.PubAck or MqttPacketType.PubRec =>
                code is 0x00 or 0x10 or 0x80 or 0x83 or 0x87 or 0x90 or 0x91 or 0x97 or 0x99,
            MqttPacketType.PubRel or MqttPacketType.PubComp => code is 0x00 or 0x92,
            MqttPacketType.SubAck =>
                code is 0x00 or 0x01 or 0x02 or 0x80 or 0x83 or 0x87 or 0x8F or 0x91 or 0x97 or 0x9E or 0xA1 or 0xA2,
            MqttPacketType.UnsubAck => code is 0x00 or 0x11 or 0x80 or 0x83 or 0x87 or 0x8F or 0x91,
            MqttPacketType.Disconnect =>
                code is 0x00 or 0x04 or (>= 0x80 and <= 0x83) or 0x87 or 0x89 or 0x8B or 0x8D or 0x8E or 0x8F or
                    0x90 or 0x93 or 0x94 or 0x95 or 0x96 or 0x97 or 0x98 or 0x99 or 0x9A or 0x9B or 0x9C or 0x9D or
                    0x9E or 0x9F or 0xA0 or 0xA1 or 0xA2,
            MqttPacketType.Auth => code is 0x00 or 0x18 or 0x19,
            _ => true,
        };
        if (!valid)
        {
            throw MqttProtocolException.ProtocolError(
                $"reason code 0x{code:X2} is not allowed in {PacketName(type)} (MQTT-v5.0 2.4)");
        }
    }

    public static void EnsureValidV311SubAck(byte code)
    {
        if (code is not (0x00 or 0x01 or 0x02 or 0x80))
        {
            throw MqttProtocolException.Malformed($"SUBACK return code 0x{code:X2} is reserved [MQTT-3.9.3-2]");
        }
    }

    public static string PacketName(MqttPacketType type) => type switch
    {
        MqttPacketType.Connect => "CONNECT",
        MqttPacketType.ConnAck => "CONNACK",
        MqttPacketType.Publish => "PUBLISH",
        MqttPacketType.PubAck => "PUBACK",
        MqttPacketType.PubRec => "PUBREC",
        MqttPacketType.PubRel => "PUBREL",
        MqttPacketType.PubComp => "PUBCOMP",
        MqttPacketType.Subscribe => "SUBSCRIBE",
        MqttPacketType.SubAck => "SUBACK",
        MqttPacketType.Unsubscribe => "UNSUBSCRIBE",
        MqttPacketType.UnsubAck => "UNSUBACK",
        MqttPacketType.PingReq => "PINGREQ",
        MqttPacketType.PingResp => "PINGRESP",
        MqttPacketType.Disconnect => "DISCONNECT",
        MqttPacketType.Auth => "AUTH",
        _ => "RESERVED",
    };
}
