using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

// Partial: PUBLISH and its four acknowledgements (MQTT-3.1.1 3.3-3.7; MQTT-v5.0 3.3-3.7). PUBLISH is the hot path.
public sealed partial class MqttPacketDecoder
{
    private MqttPublishPacket DecodePublish(ref MqttBufferReader reader, byte firstByte, bool v5)
    {
        // 3.3.1 fixed header flags: DUP (bit 3), QoS (bits 2-1), RETAIN (bit 0).
        var qos = (firstByte >> 1) & 0x03;
        if (qos == 3)
        {
            throw MqttProtocolException.Malformed("PUBLISH QoS 3 is not allowed [MQTT-3.3.1-4]");
        }

        var dup = (firstByte & 0x08) != 0;
        if (dup && qos == 0)
        {
            throw MqttProtocolException.Malformed("PUBLISH DUP must be 0 for QoS 0 [MQTT-3.3.1-2]");
        }

        var topic = _lastTopic = reader.ReadString(_lastTopic);
        if (topic.AsSpan().IndexOfAny('+', '#') >= 0)
        {
            throw new MqttProtocolException(
                MqttReasonCode.TopicNameInvalid, "PUBLISH Topic Name must not contain wildcards [MQTT-3.3.2-2]");
        }

        ushort packetId = 0;
        if (qos > 0)
        {
            packetId = ReadPacketId(ref reader, "PUBLISH with QoS > 0");
        }

        var properties = default(MqttPropertyBag);
        if (v5)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.Publish, ref properties);
        }

        if (topic.Length == 0)
        {
            if (!v5)
            {
                throw MqttProtocolException.Malformed("PUBLISH Topic Name must not be empty [MQTT-4.7.3-1]");
            }

            if (properties.TopicAlias is null)
            {
                throw MqttProtocolException.ProtocolError(
                    "PUBLISH with an empty Topic Name must carry a Topic Alias (MQTT-v5.0 3.3.2.1, 3.3.4)");
            }
        }

        var payload = reader.ReadRemainingBytes();
        return new MqttPublishPacket
        {
            Topic = topic,
            Payload = payload,
            QoS = (MqttQoS)qos,
            Retain = (firstByte & 0x01) != 0,
            Dup = dup,
            PacketId = packetId,
            TopicAlias = properties.TopicAlias ?? 0,
            SubscriptionIdentifiers = properties.SubscriptionIdentifiersOrEmpty,
            Properties = properties.ToMessageProperties(),
        };
    }

    /// <summary>
    /// PUBACK, PUBREC, PUBREL, PUBCOMP. 3.1.1: packet id only. 5.0: Remaining Length 2 means Success without
    /// properties, 3 means a reason code without properties (MQTT-v5.0 3.4.2.1, 3.4.2.2.1).
    /// </summary>
    private static T DecodePublishAck<T>(ref MqttBufferReader reader, bool v5, T empty)
        where T : MqttPublishAckPacket
    {
        var name = MqttReasonCodeRules.PacketName(empty.Type);
        var packetId = ReadPacketId(ref reader, name);
        if (!v5 || reader.IsEnd)
        {
            reader.EnsureEnd(name);
            return empty with { PacketId = packetId };
        }

        var reasonCode = reader.ReadByte();
        MqttReasonCodeRules.EnsureValid(empty.Type, reasonCode);
        var properties = default(MqttPropertyBag);
        if (!reader.IsEnd)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.PublishAck, ref properties);
            reader.EnsureEnd(name);
        }

        return empty with
        {
            PacketId = packetId,
            ReasonCode = (MqttReasonCode)reasonCode,
            ReasonString = properties.ReasonString,
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }
}
