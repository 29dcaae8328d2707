using System.Collections.Immutable;
using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

// Partial: CONNECT, CONNACK and the subscription packets.
public static partial class MqttPacketEncoder
{
    /// <summary>
    /// CONNECT at the packet's own level: protocol name "MQIsdp" for 3.1 and "MQTT" otherwise (MQTT-3.1.2.1);
    /// flags per MQTT-v5.0 3.1.2.3 (bit 0 reserved, clean start, will flag, will QoS, will retain, password, user name).
    /// </summary>
    private static byte WriteConnect(ref MqttBufferWriter w, MqttConnectPacket p)
    {
        var version = p.ProtocolVersion;
        var v5 = version == MqttProtocolVersion.V500;
        w.WriteString(version == MqttProtocolVersion.V310 ? "MQIsdp" : "MQTT");
        w.WriteByte((byte)version);

        var flags = 0;
        if (p.CleanStart)
        {
            flags |= 0x02;
        }

        if (p.Will is { } will)
        {
            flags |= 0x04 | (byte)will.QoS << 3 | (will.Retain ? 0x20 : 0);
        }

        if (p.Password is not null)
        {
            flags |= 0x40;
        }

        if (p.Username is not null)
        {
            flags |= 0x80;
        }

        w.WriteByte((byte)flags);
        w.WriteUInt16(p.KeepAlive);
        if (v5)
        {
            MqttPropertyWriter.WriteConnect(ref w, p);
        }

        w.WriteString(p.ClientId);
        if (p.Will is { } w2)
        {
            if (v5)
            {
                MqttPropertyWriter.WriteWill(ref w, w2);
            }

            w.WriteString(w2.Topic);
            w.WriteBinary(w2.Payload.Span);
        }

        if (p.Username is { } username)
        {
            w.WriteString(username);
        }

        if (p.Password is { } password)
        {
            w.WriteBinary(password.Span);
        }

        return (byte)MqttPacketType.Connect << 4;
    }

    private static byte WriteConnAck(ref MqttBufferWriter w, MqttConnAckPacket p, bool v5)
    {
        w.WriteByte(p.SessionPresent ? (byte)1 : (byte)0);
        w.WriteByte(p.ReasonCode);
        if (v5)
        {
            MqttPropertyWriter.WriteConnAck(ref w, p);
        }

        return (byte)MqttPacketType.ConnAck << 4;
    }

    /// <summary>SUBSCRIBE; 3.1.1 options carry the QoS only, 5.0 adds No Local, RAP and Retain Handling (3.8.3.1).</summary>
    private static byte WriteSubscribe(ref MqttBufferWriter w, MqttSubscribePacket p, bool v5)
    {
        w.WriteUInt16(p.PacketId);
        if (v5)
        {
            MqttPropertyWriter.WriteReasonAndUser(ref w, null, p.UserProperties, p.SubscriptionIdentifier);
        }

        foreach (var subscription in OrEmpty(p.Subscriptions))
        {
            w.WriteString(subscription.TopicFilter);
            var options = (int)subscription.QoS;
            if (v5)
            {
                options |= (subscription.NoLocal ? 0x04 : 0) | (subscription.RetainAsPublished ? 0x08 : 0) |
                           (int)subscription.RetainHandling << 4;
            }

            w.WriteByte((byte)options);
        }

        return (byte)MqttPacketType.Subscribe << 4 | 0b0010;
    }

    private static byte WriteSubAck(ref MqttBufferWriter w, MqttSubAckPacket p, bool v5)
    {
        w.WriteUInt16(p.PacketId);
        if (v5)
        {
            MqttPropertyWriter.WriteReasonAndUser(ref w, p.ReasonString, p.UserProperties);
        }

        foreach (var code in OrEmpty(p.ReasonCodes))
        {
            w.WriteByte((byte)code);
        }

        return (byte)MqttPacketType.SubAck << 4;
    }

    private static byte WriteUnsubscribe(ref MqttBufferWriter w, MqttUnsubscribePacket p, bool v5)
    {
        w.WriteUInt16(p.PacketId);
        if (v5)
        {
            MqttPropertyWriter.WriteReasonAndUser(ref w, null, p.UserProperties);
        }

        foreach (var filter in OrEmpty(p.TopicFilters))
        {
            w.WriteString(filter);
        }

        return (byte)MqttPacketType.Unsubscribe << 4 | 0b0010;
    }

    /// <summary>3.1.1 UNSUBACK is the packet id alone (MQTT-3.1.1 3.11.2).</summary>
    private static byte WriteUnsubAck(ref MqttBufferWriter w, MqttUnsubAckPacket p, bool v5)
    {
        w.WriteUInt16(p.PacketId);
        if (v5)
        {
            MqttPropertyWriter.WriteReasonAndUser(ref w, p.ReasonString, p.UserProperties);
            foreach (var code in OrEmpty(p.ReasonCodes))
            {
                w.WriteByte((byte)code);
            }
        }

        return (byte)MqttPacketType.UnsubAck << 4;
    }

    /// <summary>A record built with <c>default</c> arrays encodes as if they were empty instead of throwing.</summary>
    private static ImmutableArray<T> OrEmpty<T>(ImmutableArray<T> items) =>
        items.IsDefault ? ImmutableArray<T>.Empty : items;
}
