using System.Collections.Immutable;
using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

// Partial: SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT and AUTH bodies (MQTT-3.1.1 3.8-3.14; MQTT-v5.0 3.8-3.15).
// Topic-filter syntax is validated by the protocol layer, not here.
public sealed partial class MqttPacketDecoder
{
    private static MqttSubscribePacket DecodeSubscribe(ref MqttBufferReader reader, bool v5)
    {
        var packetId = ReadPacketId(ref reader, "SUBSCRIBE");
        var properties = default(MqttPropertyBag);
        if (v5)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.Subscribe, ref properties);
        }

        var subscriptions = ImmutableArray.CreateBuilder<MqttTopicSubscription>();
        while (!reader.IsEnd)
        {
            var filter = reader.ReadString();
            var options = reader.ReadByte();
            var qos = options & 0x03;
            if (qos == 3)
            {
                throw MqttProtocolException.Malformed("SUBSCRIBE requested QoS 3 [MQTT-3.8.3-4] (MQTT-v5.0 3.8.3.1)");
            }

            if (!v5)
            {
                if ((options & 0xFC) != 0)
                {
                    throw MqttProtocolException.Malformed("SUBSCRIBE reserved option bits 7-2 must be 0 [MQTT-3-8.3-4]");
                }

                subscriptions.Add(new MqttTopicSubscription { TopicFilter = filter, QoS = (MqttQoS)qos });
                continue;
            }

            if ((options & 0xC0) != 0)
            {
                throw MqttProtocolException.Malformed("SUBSCRIBE reserved option bits 7-6 must be 0 [MQTT-3.8.3-5]");
            }

            var retainHandling = (options >> 4) & 0x03;
            if (retainHandling == 3)
            {
                throw MqttProtocolException.ProtocolError("SUBSCRIBE Retain Handling 3 is reserved (MQTT-v5.0 3.8.3.1)");
            }

            subscriptions.Add(new MqttTopicSubscription
            {
                TopicFilter = filter,
                QoS = (MqttQoS)qos,
                NoLocal = (options & 0x04) != 0,
                RetainAsPublished = (options & 0x08) != 0,
                RetainHandling = (MqttRetainHandling)retainHandling,
            });
        }

        if (subscriptions.Count == 0)
        {
            throw MqttProtocolException.ProtocolError("SUBSCRIBE must contain at least one topic filter [MQTT-3.8.3-3]");
        }

        return new MqttSubscribePacket
        {
            PacketId = packetId,
            Subscriptions = subscriptions.DrainToImmutable(),
            SubscriptionIdentifier = properties.SubscriptionIdentifiers is { Count: > 0 } ids ? ids[0] : 0,
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }

    private static MqttSubAckPacket DecodeSubAck(ref MqttBufferReader reader, bool v5)
    {
        var packetId = ReadPacketId(ref reader, "SUBACK");
        var properties = default(MqttPropertyBag);
        if (v5)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.SubAck, ref properties);
        }

        var codes = ReadReasonCodes(ref reader, MqttPacketType.SubAck, v5);
        return new MqttSubAckPacket
        {
            PacketId = packetId,
            ReasonCodes = codes,
            ReasonString = properties.ReasonString,
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }

    private static MqttUnsubscribePacket DecodeUnsubscribe(ref MqttBufferReader reader, bool v5)
    {
        var packetId = ReadPacketId(ref reader, "UNSUBSCRIBE");
        var properties = default(MqttPropertyBag);
        if (v5)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.Unsubscribe, ref properties);
        }

        var filters = ImmutableArray.CreateBuilder<string>();
        while (!reader.IsEnd)
        {
            filters.Add(reader.ReadString());
        }

        if (filters.Count == 0)
        {
            throw MqttProtocolException.ProtocolError("UNSUBSCRIBE must contain at least one topic filter [MQTT-3.10.3-2]");
        }

        return new MqttUnsubscribePacket
        {
            PacketId = packetId,
            TopicFilters = filters.DrainToImmutable(),
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }

    /// <summary>3.1.1 UNSUBACK carries only the packet id (MQTT-3.1.1 3.11); 5.0 adds properties and reason codes.</summary>
    private static MqttUnsubAckPacket DecodeUnsubAck(ref MqttBufferReader reader, bool v5)
    {
        var packetId = ReadPacketId(ref reader, "UNSUBACK");
        if (!v5)
        {
            reader.EnsureEnd("UNSUBACK");
            return new MqttUnsubAckPacket { PacketId = packetId };
        }

        var properties = default(MqttPropertyBag);
        MqttPropertyReader.Read(ref reader, MqttPropertyContext.UnsubAck, ref properties);
        return new MqttUnsubAckPacket
        {
            PacketId = packetId,
            ReasonCodes = ReadReasonCodes(ref reader, MqttPacketType.UnsubAck, v5: true),
            ReasonString = properties.ReasonString,
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }

    private static ImmutableArray<MqttReasonCode> ReadReasonCodes(ref MqttBufferReader reader, MqttPacketType type, bool v5)
    {
        if (reader.IsEnd)
        {
            throw MqttProtocolException.ProtocolError(
                $"{MqttReasonCodeRules.PacketName(type)} must carry at least one reason code (MQTT-v5.0 3.9.3, 3.11.3)");
        }

        var codes = ImmutableArray.CreateBuilder<MqttReasonCode>(reader.Remaining);
        while (!reader.IsEnd)
        {
            var code = reader.ReadByte();
            if (v5)
            {
                MqttReasonCodeRules.EnsureValid(type, code);
            }
            else
            {
                MqttReasonCodeRules.EnsureValidV311SubAck(code);
            }

            codes.Add((MqttReasonCode)code);
        }

        return codes.MoveToImmutable();
    }

    /// <summary>
    /// 3.1.1 DISCONNECT is empty. 5.0: Remaining Length 0 means Normal disconnection, 1 means a reason code without
    /// properties (MQTT-v5.0 3.14.2.1, 3.14.2.2.1).
    /// </summary>
    private static MqttDisconnectPacket DecodeDisconnect(ref MqttBufferReader reader, bool v5)
    {
        if (!v5 || reader.IsEnd)
        {
            reader.EnsureEnd("DISCONNECT");
            return MqttDisconnectPacket.Normal;
        }

        var reasonCode = reader.ReadByte();
        MqttReasonCodeRules.EnsureValid(MqttPacketType.Disconnect, reasonCode);
        var properties = default(MqttPropertyBag);
        if (!reader.IsEnd)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.Disconnect, ref properties);
            reader.EnsureEnd("DISCONNECT");
        }

        return new MqttDisconnectPacket
        {
            ReasonCode = (MqttReasonCode)reasonCode,
            SessionExpiryInterval = properties.SessionExpiryInterval,
            ReasonString = properties.ReasonString,
            ServerReference = properties.ServerReference,
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }

    /// <summary>AUTH (5.0 only): Remaining Length 0 means Success without properties (MQTT-v5.0 3.15.2.1).</summary>
    private static MqttAuthPacket DecodeAuth(ref MqttBufferReader reader)
    {
        if (reader.IsEnd)
        {
            return new MqttAuthPacket();
        }

        var reasonCode = reader.ReadByte();
        MqttReasonCodeRules.EnsureValid(MqttPacketType.Auth, reasonCode);
        var properties = default(MqttPropertyBag);
        if (!reader.IsEnd)
        {
            MqttPropertyReader.Read(ref reader, MqttPropertyContext.Auth, ref properties);
            reader.EnsureEnd("AUTH");
        }

        return new MqttAuthPacket
        {
            ReasonCode = (MqttReasonCode)reasonCode,
            AuthenticationMethod = properties.AuthenticationMethod,
            AuthenticationData = MqttPropertyBag.AsMemory(properties.AuthenticationData),
            ReasonString = properties.ReasonString,
            UserProperties = properties.UserPropertiesOrEmpty,
        };
    }
}
