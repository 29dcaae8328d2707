using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

/// <summary>
/// Encodes packet records into MQTT 3.1, 3.1.1 or 5.0 bytes. Stateless: the caller passes the connection's protocol
/// level, and for 3.1/3.1.1 the fields that exist only in 5.0 are not written. CONNECT is always written at its own
/// <see cref="MqttConnectPacket.ProtocolVersion"/>. One body-writing routine runs twice, first counting and then
/// writing, so <see cref="GetSize"/> and <see cref="Encode(MqttPacket, MqttProtocolVersion, Span{byte})"/> agree
/// by construction. The 5.0 short forms are used when they apply: PUBACK..PUBCOMP with Success and no properties
/// (MQTT-v5.0 3.4.2.1), DISCONNECT Normal and AUTH Success without properties (3.14.2.1, 3.15.2.1).
/// </summary>
public static partial class MqttPacketEncoder
{
    /// <summary>Total encoded size in bytes, fixed header included.</summary>
    public static int GetSize(MqttPacket packet, MqttProtocolVersion version)
    {
        var remainingLength = MeasureBody(packet, version, out _);
        return 1 + MqttBufferWriter.VariableByteIntegerSize(remainingLength) + remainingLength;
    }

    /// <summary>Writes the packet into <paramref name="destination"/> and returns the number of bytes written.</summary>
    public static int Encode(MqttPacket packet, MqttProtocolVersion version, Span<byte> destination)
    {
        var remainingLength = MeasureBody(packet, version, out var firstByte);
        var total = 1 + MqttBufferWriter.VariableByteIntegerSize(remainingLength) + remainingLength;
        if (destination.Length < total)
        {
            throw new ArgumentException(
                $"destination holds {destination.Length} bytes but the packet needs {total}", nameof(destination));
        }

        var writer = new MqttBufferWriter(destination);
        writer.WriteByte(firstByte);
        writer.WriteVariableByteInteger((uint)remainingLength);
        WriteBody(ref writer, packet, version);
        return writer.Position;
    }

    /// <summary>Encodes the packet into a new array of exactly its size.</summary>
    public static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var remainingLength = MeasureBody(packet, version, out var firstByte);
        var result = new byte[1 + MqttBufferWriter.VariableByteIntegerSize(remainingLength) + remainingLength];
        var writer = new MqttBufferWriter(result);
        writer.WriteByte(firstByte);
        writer.WriteVariableByteInteger((uint)remainingLength);
        WriteBody(ref writer, packet, version);
        return result;
    }

    private static int MeasureBody(MqttPacket packet, MqttProtocolVersion version, out byte firstByte)
    {
        var measure = MqttBufferWriter.Measure();
        firstByte = WriteBody(ref measure, packet, version);
        if (measure.Position > MqttBufferWriter.MaxVariableByteInteger)
        {
            throw MqttProtocolException.Malformed(
                $"packet body of {measure.Position} bytes exceeds the largest Remaining Length (MQTT-v5.0 2.1.4)");
        }

        return measure.Position;
    }

    /// <summary>Writes the variable header and payload; returns the fixed header's first byte.</summary>
    private static byte WriteBody(ref MqttBufferWriter w, MqttPacket packet, MqttProtocolVersion version)
    {
        var v5 = version == MqttProtocolVersion.V500;
        switch (packet)
        {
            case MqttPublishPacket publish:
                return WritePublish(ref w, publish, v5);
            case MqttPublishAckPacket ack:
                return WritePublishAck(ref w, ack, v5);
            case MqttConnectPacket connect:
                return WriteConnect(ref w, connect);
            case MqttConnAckPacket connAck:
                return WriteConnAck(ref w, connAck, v5);
            case MqttSubscribePacket subscribe:
                return WriteSubscribe(ref w, subscribe, v5);
            case MqttSubAckPacket subAck:
                return WriteSubAck(ref w, subAck, v5);
            case MqttUnsubscribePacket unsubscribe:
                return WriteUnsubscribe(ref w, unsubscribe, v5);
            case MqttUnsubAckPacket unsubAck:
                return WriteUnsubAck(ref w, unsubAck, v5);
            case MqttPingReqPacket:
                return (byte)MqttPacketType.PingReq << 4;
            case MqttPingRespPacket:
                return (byte)MqttPacketType.PingResp << 4;
            case MqttDisconnectPacket disconnect:
                return WriteDisconnect(ref w, disconnect, v5);
            case MqttAuthPacket auth:
                if (!v5)
                {
                    throw MqttProtocolException.ProtocolError("AUTH exists only in MQTT 5.0 (MQTT-v5.0 3.15)");
                }

                return WriteAuth(ref w, auth);
            default:
                throw new ArgumentException($"unknown packet record {packet.GetType().Name}", nameof(packet));
        }
    }

    private static byte WritePublish(ref MqttBufferWriter w, MqttPublishPacket p, bool v5)
    {
        w.WriteString(p.Topic);
        if (p.QoS != MqttQoS.AtMostOnce)
        {
            w.WriteUInt16(p.PacketId);
        }

        if (v5)
        {
            MqttPropertyWriter.WritePublish(ref w, p);
        }

        w.WriteBytes(p.Payload.Span);
        return (byte)((byte)MqttPacketType.Publish << 4 | (p.Dup ? 0x08 : 0) | (byte)p.QoS << 1 | (p.Retain ? 0x01 : 0));
    }

    private static byte WritePublishAck(ref MqttBufferWriter w, MqttPublishAckPacket p, bool v5)
    {
        w.WriteUInt16(p.PacketId);
        var hasProperties = p.ReasonString is not null || !p.UserProperties.IsDefaultOrEmpty;
        if (v5 && (p.ReasonCode != MqttReasonCode.Success || hasProperties))
        {
            w.WriteByte((byte)p.ReasonCode);
            if (hasProperties)
            {
                MqttPropertyWriter.WriteReasonAndUser(ref w, p.ReasonString, p.UserProperties);
            }
        }

        return (byte)((byte)p.Type << 4 | (p.Type == MqttPacketType.PubRel ? 0b0010 : 0));
    }

    private static byte WriteDisconnect(ref MqttBufferWriter w, MqttDisconnectPacket p, bool v5)
    {
        var hasProperties = p.SessionExpiryInterval is not null || p.ReasonString is not null ||
                            p.ServerReference is not null || !p.UserProperties.IsDefaultOrEmpty;
        if (v5 && (p.ReasonCode != MqttReasonCode.NormalDisconnection || hasProperties))
        {
            w.WriteByte((byte)p.ReasonCode);
            if (hasProperties)
            {
                MqttPropertyWriter.WriteDisconnect(ref w, p);
            }
        }

        return (byte)MqttPacketType.Disconnect << 4;
    }

    private static byte WriteAuth(ref MqttBufferWriter w, MqttAuthPacket p)
    {
        var hasProperties = p.AuthenticationMethod is not null || p.AuthenticationData is not null ||
                            p.ReasonString is not null || !p.UserProperties.IsDefaultOrEmpty;
        if (p.ReasonCode != MqttReasonCode.Success || hasProperties)
        {
            w.WriteByte((byte)p.ReasonCode);
            if (hasProperties)
            {
                MqttPropertyWriter.WriteAuth(ref w, p);
            }
        }

        return (byte)MqttPacketType.Auth << 4;
    }
}
