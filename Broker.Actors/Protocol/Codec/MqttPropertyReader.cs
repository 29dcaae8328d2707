using System.Collections.Immutable;
using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

/// <summary>
/// Reads one MQTT 5.0 property block (MQTT-v5.0 2.2.2): the Property Length, then identifier/value pairs. It owns the
/// property rules that need no packet context beyond "which packet is this": unknown identifiers are Malformed,
/// identifiers not allowed in the packet and repeated single-valued properties are Protocol Errors, and the value
/// ranges the spec pins (Receive Maximum, Maximum Packet Size, Subscription Identifier, Topic Alias not zero;
/// the boolean-like bytes 0 or 1).
/// </summary>
internal static class MqttPropertyReader
{
    private const ulong MessageProperties =
        1UL << 0x01 | 1UL << 0x02 | 1UL << 0x03 | 1UL << 0x08 | 1UL << 0x09 | 1UL << 0x26;

    private const ulong ReasonAndUser = 1UL << 0x1F | 1UL << 0x26;

    public static void Read(ref MqttBufferReader reader, MqttPropertyContext context, ref MqttPropertyBag bag)
    {
        var length = reader.ReadVariableByteInteger();
        if (length > (uint)reader.Remaining)
        {
            throw MqttProtocolException.Malformed(
                $"Property Length {length} runs past the end of the packet (MQTT-v5.0 2.2.2.1)");
        }

        var properties = reader.ReadSubReader((int)length);
        var allowed = AllowedMask(context);
        ulong seen = 0;
        while (!properties.IsEnd)
        {
            var raw = properties.ReadVariableByteInteger();
            if (raw > 0x2A || (KnownMask & (1UL << (int)raw)) == 0)
            {
                throw MqttProtocolException.Malformed($"unknown property identifier 0x{raw:X2} (MQTT-v5.0 2.2.2.2)");
            }

            var id = (MqttPropertyId)raw;
            var bit = 1UL << (int)raw;
            if ((allowed & bit) == 0)
            {
                throw MqttProtocolException.ProtocolError($"property {id} is not allowed in {context} (MQTT-v5.0 2.2.2.2)");
            }

            var repeatable = id == MqttPropertyId.UserProperty ||
                             (id == MqttPropertyId.SubscriptionIdentifier && context == MqttPropertyContext.Publish);
            if ((seen & bit) != 0 && !repeatable)
            {
                throw MqttProtocolException.ProtocolError($"property {id} appears more than once (MQTT-v5.0 2.2.2.2)");
            }

            seen |= bit;
            ReadValue(ref properties, id, ref bag);
        }
    }

    private static void ReadValue(ref MqttBufferReader r, MqttPropertyId id, ref MqttPropertyBag bag)
    {
        switch (id)
        {
            case MqttPropertyId.PayloadFormatIndicator:
                bag.PayloadFormatIndicator = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.MessageExpiryInterval:
                bag.MessageExpiryInterval = r.ReadUInt32();
                break;
            case MqttPropertyId.ContentType:
                bag.ContentType = r.ReadString();
                break;
            case MqttPropertyId.ResponseTopic:
                bag.ResponseTopic = r.ReadString();
                break;
            case MqttPropertyId.CorrelationData:
                bag.CorrelationData = r.ReadBinary();
                break;
            case MqttPropertyId.SubscriptionIdentifier:
                var subscriptionId = r.ReadVariableByteInteger();
                if (subscriptionId == 0)
                {
                    throw MqttProtocolException.ProtocolError("Subscription Identifier 0 (MQTT-v5.0 3.8.2.1.2)");
                }

                (bag.SubscriptionIdentifiers ??= ImmutableArray.CreateBuilder<uint>(1)).Add(subscriptionId);
                break;
            case MqttPropertyId.SessionExpiryInterval:
                bag.SessionExpiryInterval = r.ReadUInt32();
                break;
            case MqttPropertyId.AssignedClientIdentifier:
                bag.AssignedClientIdentifier = r.ReadString();
                break;
            case MqttPropertyId.ServerKeepAlive:
                bag.ServerKeepAlive = r.ReadUInt16();
                break;
            case MqttPropertyId.AuthenticationMethod:
                bag.AuthenticationMethod = r.ReadString();
                break;
            case MqttPropertyId.AuthenticationData:
                bag.AuthenticationData = r.ReadBinary();
                break;
            case MqttPropertyId.RequestProblemInformation:
                bag.RequestProblemInformation = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.WillDelayInterval:
                bag.WillDelayInterval = r.ReadUInt32();
                break;
            case MqttPropertyId.RequestResponseInformation:
                bag.RequestResponseInformation = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.ResponseInformation:
                bag.ResponseInformation = r.ReadString();
                break;
            case MqttPropertyId.ServerReference:
                bag.ServerReference = r.ReadString();
                break;
            case MqttPropertyId.ReasonString:
                bag.ReasonString = r.ReadString();
                break;
            case MqttPropertyId.ReceiveMaximum:
                bag.ReceiveMaximum = ReadNonZeroUInt16(ref r, id, "(MQTT-v5.0 3.1.2.11.3)");
                break;
            case MqttPropertyId.TopicAliasMaximum:
                bag.TopicAliasMaximum = r.ReadUInt16();
                break;
            case MqttPropertyId.TopicAlias:
                bag.TopicAlias = r.ReadUInt16();
                if (bag.TopicAlias == 0)
                {
                    // A Topic Alias of 0 is answered with DISCONNECT 0x94 Topic Alias invalid, like one above the
                    // maximum (MQTT-v5.0 3.3.2.3.4) [MQTT-3.3.2-8]; not with the generic 0x82.
                    throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, "property TopicAlias must not be 0 [MQTT-3.3.2-8]");
                }

                break;
            case MqttPropertyId.MaximumQoS:
                bag.MaximumQoS = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.RetainAvailable:
                bag.RetainAvailable = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.UserProperty:
                var name = r.ReadString();
                var value = r.ReadString();
                (bag.UserProperties ??= ImmutableArray.CreateBuilder<MqttUserProperty>(2)).Add(new MqttUserProperty(name, value));
                break;
            case MqttPropertyId.MaximumPacketSize:
                var maximumPacketSize = r.ReadUInt32();
                if (maximumPacketSize == 0)
                {
                    throw MqttProtocolException.ProtocolError("Maximum Packet Size 0 (MQTT-v5.0 3.1.2.11.4)");
                }

                bag.MaximumPacketSize = maximumPacketSize;
                break;
            case MqttPropertyId.WildcardSubscriptionAvailable:
                bag.WildcardSubscriptionAvailable = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.SubscriptionIdentifierAvailable:
                bag.SubscriptionIdentifierAvailable = ReadFlag(ref r, id);
                break;
            case MqttPropertyId.SharedSubscriptionAvailable:
                bag.SharedSubscriptionAvailable = ReadFlag(ref r, id);
                break;
        }
    }

    /// <summary>Byte properties whose only legal values are 0 and 1 (e.g. Payload Format Indicator, MQTT-v5.0 3.3.2.3.2).</summary>
    private static byte ReadFlag(ref MqttBufferReader r, MqttPropertyId id)
    {
        var value = r.ReadByte();
        if (value > 1)
        {
            throw MqttProtocolException.ProtocolError($"property {id} has value {value}; only 0 or 1 are allowed");
        }

        return value;
    }

    private static ushort ReadNonZeroUInt16(ref MqttBufferReader r, MqttPropertyId id, string rule)
    {
        var value = r.ReadUInt16();
        if (value == 0)
        {
            throw MqttProtocolException.ProtocolError($"property {id} must not be 0 {rule}");
        }

        return value;
    }

    private const ulong KnownMask =
        MessageProperties | 1UL << 0x0B | 1UL << 0x11 | 1UL << 0x12 | 1UL << 0x13 | 1UL << 0x15 | 1UL << 0x16 |
        1UL << 0x17 | 1UL << 0x18 | 1UL << 0x19 | 1UL << 0x1A | 1UL << 0x1C | 1UL << 0x1F | 1UL << 0x21 |
        1UL << 0x22 | 1UL << 0x23 | 1UL << 0x24 | 1UL << 0x25 | 1UL << 0x27 | 1UL << 0x28 | 1UL << 0x29 |
        1UL << 0x2A;

    /// <summary>Table 2-4 read by column: the identifiers each packet may carry.</summary>
    private static ulong AllowedMask(MqttPropertyContext context) => context switch
    {
        MqttPropertyContext.Connect =>
            1UL << 0x11 | 1UL << 0x15 | 1UL << 0x16 | 1UL << 0x17 | 1UL << 0x19 | 1UL << 0x21 | 1UL << 0x22 |
            1UL << 0x26 | 1UL << 0x27,
        MqttPropertyContext.Will => MessageProperties | 1UL << 0x18,
        MqttPropertyContext.ConnAck =>
            1UL << 0x11 | 1UL << 0x12 | 1UL << 0x13 | 1UL << 0x15 | 1UL << 0x16 | 1UL << 0x1A | 1UL << 0x1C |
            1UL << 0x1F | 1UL << 0x21 | 1UL << 0x22 | 1UL << 0x24 | 1UL << 0x25 | 1UL << 0x26 | 1UL << 0x27 |
            1UL << 0x28 | 1UL << 0x29 | 1UL << 0x2A,
        MqttPropertyContext.Publish => MessageProperties | 1UL << 0x0B | 1UL << 0x23,
        MqttPropertyContext.Subscribe => 1UL << 0x0B | 1UL << 0x26,
        MqttPropertyContext.Unsubscribe => 1UL << 0x26,
        MqttPropertyContext.Disconnect => ReasonAndUser | 1UL << 0x11 | 1UL << 0x1C,
        MqttPropertyContext.Auth => ReasonAndUser | 1UL << 0x15 | 1UL << 0x16,
        _ => ReasonAndUser, // PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
    };
}
