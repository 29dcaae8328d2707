using System.Collections.Immutable;
using Broker.Protocol.Packets;

namespace Broker.Protocol.Codec;

/// <summary>
/// Writes MQTT 5.0 property blocks (MQTT-v5.0 2.2.2): each block is measured first with a counting writer to get its
/// Property Length, then written. Absent values (null, or the spec default where the record uses a plain value)
/// are not written. Only the 5.0 encoder calls this.
/// </summary>
internal static class MqttPropertyWriter
{
    public static void WriteConnect(ref MqttBufferWriter w, MqttConnectPacket p)
    {
        var m = MqttBufferWriter.Measure();
        ConnectContent(ref m, p);
        w.WriteVariableByteInteger((uint)m.Position);
        ConnectContent(ref w, p);
    }

    public static void WriteWill(ref MqttBufferWriter w, MqttWill will)
    {
        var m = MqttBufferWriter.Measure();
        WillContent(ref m, will);
        w.WriteVariableByteInteger((uint)m.Position);
        WillContent(ref w, will);
    }

    public static void WriteConnAck(ref MqttBufferWriter w, MqttConnAckPacket p)
    {
        var m = MqttBufferWriter.Measure();
        ConnAckContent(ref m, p);
        w.WriteVariableByteInteger((uint)m.Position);
        ConnAckContent(ref w, p);
    }

    public static void WritePublish(ref MqttBufferWriter w, MqttPublishPacket p)
    {
        var m = MqttBufferWriter.Measure();
        PublishContent(ref m, p);
        w.WriteVariableByteInteger((uint)m.Position);
        PublishContent(ref w, p);
    }

    /// <summary>The blocks made only of Reason String, User Properties and at most one Subscription Identifier.</summary>
    public static void WriteReasonAndUser(
        ref MqttBufferWriter w, string? reasonString, ImmutableArray<MqttUserProperty> userProperties, uint subscriptionId = 0)
    {
        var m = MqttBufferWriter.Measure();
        ReasonAndUserContent(ref m, reasonString, userProperties, subscriptionId);
        w.WriteVariableByteInteger((uint)m.Position);
        ReasonAndUserContent(ref w, reasonString, userProperties, subscriptionId);
    }

    public static void WriteDisconnect(ref MqttBufferWriter w, MqttDisconnectPacket p)
    {
        var m = MqttBufferWriter.Measure();
        DisconnectContent(ref m, p);
        w.WriteVariableByteInteger((uint)m.Position);
        DisconnectContent(ref w, p);
    }

    public static void WriteAuth(ref MqttBufferWriter w, MqttAuthPacket p)
    {
        var m = MqttBufferWriter.Measure();
        AuthContent(ref m, p);
        w.WriteVariableByteInteger((uint)m.Position);
        AuthContent(ref w, p);
    }

    private static void ConnectContent(ref MqttBufferWriter w, MqttConnectPacket p)
    {
        if (p.SessionExpiryInterval != 0)
        {
            UInt32(ref w, MqttPropertyId.SessionExpiryInterval, p.SessionExpiryInterval);
        }

        if (p.ReceiveMaximum is { } receiveMaximum)
        {
            UInt16(ref w, MqttPropertyId.ReceiveMaximum, receiveMaximum);
        }

        if (p.MaximumPacketSize is { } maximumPacketSize)
        {
            UInt32(ref w, MqttPropertyId.MaximumPacketSize, maximumPacketSize);
        }

        if (p.TopicAliasMaximum != 0)
        {
            UInt16(ref w, MqttPropertyId.TopicAliasMaximum, p.TopicAliasMaximum);
        }

        if (p.RequestResponseInformation)
        {
            Byte(ref w, MqttPropertyId.RequestResponseInformation, 1);
        }

        if (!p.RequestProblemInformation)
        {
            Byte(ref w, MqttPropertyId.RequestProblemInformation, 0);
        }

        Authentication(ref w, p.AuthenticationMethod, p.AuthenticationData);
        UserProperties(ref w, p.UserProperties);
    }

    private static void WillContent(ref MqttBufferWriter w, MqttWill will)
    {
        if (will.DelayInterval != 0)
        {
            UInt32(ref w, MqttPropertyId.WillDelayInterval, will.DelayInterval);
        }

        MessageContent(ref w, will.Properties);
    }

    private static void ConnAckContent(ref MqttBufferWriter w, MqttConnAckPacket p)
    {
        if (p.SessionExpiryInterval is { } sessionExpiry)
        {
            UInt32(ref w, MqttPropertyId.SessionExpiryInterval, sessionExpiry);
        }

        if (p.ReceiveMaximum is { } receiveMaximum)
        {
            UInt16(ref w, MqttPropertyId.ReceiveMaximum, receiveMaximum);
        }

        if (p.MaximumQoS is { } maximumQoS)
        {
            Byte(ref w, MqttPropertyId.MaximumQoS, maximumQoS);
        }

        if (p.RetainAvailable is { } retainAvailable)
        {
            Byte(ref w, MqttPropertyId.RetainAvailable, retainAvailable ? (byte)1 : (byte)0);
        }

        if (p.MaximumPacketSize is { } maximumPacketSize)
        {
            UInt32(ref w, MqttPropertyId.MaximumPacketSize, maximumPacketSize);
        }

        OptionalString(ref w, MqttPropertyId.AssignedClientIdentifier, p.AssignedClientIdentifier);
        if (p.TopicAliasMaximum is { } topicAliasMaximum)
        {
            UInt16(ref w, MqttPropertyId.TopicAliasMaximum, topicAliasMaximum);
        }

        OptionalString(ref w, MqttPropertyId.ReasonString, p.ReasonString);
        if (p.WildcardSubscriptionAvailable is { } wildcard)
        {
            Byte(ref w, MqttPropertyId.WildcardSubscriptionAvailable, wildcard ? (byte)1 : (byte)0);
        }

        if (p.SubscriptionIdentifiersAvailable is { } subscriptionIds)
        {
            Byte(ref w, MqttPropertyId.SubscriptionIdentifierAvailable, subscriptionIds ? (byte)1 : (byte)0);
        }

        if (p.SharedSubscriptionAvailable is { } shared)
        {
            Byte(ref w, MqttPropertyId.SharedSubscriptionAvailable, shared ? (byte)1 : (byte)0);
        }

        if (p.ServerKeepAlive is { } serverKeepAlive)
        {
            UInt16(ref w, MqttPropertyId.ServerKeepAlive, serverKeepAlive);
        }

        OptionalString(ref w, MqttPropertyId.ResponseInformation, p.ResponseInformation);
        OptionalString(ref w, MqttPropertyId.ServerReference, p.ServerReference);
        Authentication(ref w, p.AuthenticationMethod, p.AuthenticationData);
        UserProperties(ref w, p.UserProperties);
    }

    private static void PublishContent(ref MqttBufferWriter w, MqttPublishPacket p)
    {
        if (p.TopicAlias != 0)
        {
            UInt16(ref w, MqttPropertyId.TopicAlias, p.TopicAlias);
        }

        var ids = p.SubscriptionIdentifiers;
        if (!ids.IsDefaultOrEmpty)
        {
            for (var i = 0; i < ids.Length; i++)
            {
                w.WriteByte((byte)MqttPropertyId.SubscriptionIdentifier);
                w.WriteVariableByteInteger(ids[i]);
            }
        }

        MessageContent(ref w, p.Properties);
    }

    /// <summary>The application-message properties shared by PUBLISH and the will (MQTT-v5.0 3.3.2.3).</summary>
    private static void MessageContent(ref MqttBufferWriter w, MqttMessageProperties p)
    {
        if (ReferenceEquals(p, MqttMessageProperties.Empty))
        {
            return;
        }

        if (p.PayloadFormatIndicator is { } format)
        {
            Byte(ref w, MqttPropertyId.PayloadFormatIndicator, format);
        }

        if (p.MessageExpiryInterval is { } expiry)
        {
            UInt32(ref w, MqttPropertyId.MessageExpiryInterval, expiry);
        }

        OptionalString(ref w, MqttPropertyId.ContentType, p.ContentType);
        OptionalString(ref w, MqttPropertyId.ResponseTopic, p.ResponseTopic);
        if (p.CorrelationData is { } correlation)
        {
            w.WriteByte((byte)MqttPropertyId.CorrelationData);
            w.WriteBinary(correlation.Span);
        }

        UserProperties(ref w, p.UserProperties);
    }

    private static void ReasonAndUserContent(
        ref MqttBufferWriter w, string? reasonString, ImmutableArray<MqttUserProperty> userProperties, uint subscriptionId)
    {
        if (subscriptionId != 0)
        {
            w.WriteByte((byte)MqttPropertyId.SubscriptionIdentifier);
            w.WriteVariableByteInteger(subscriptionId);
        }

        OptionalString(ref w, MqttPropertyId.ReasonString, reasonString);
        UserProperties(ref w, userProperties);
    }

    private static void DisconnectContent(ref MqttBufferWriter w, MqttDisconnectPacket p)
    {
        if (p.SessionExpiryInterval is { } sessionExpiry)
        {
            UInt32(ref w, MqttPropertyId.SessionExpiryInterval, sessionExpiry);
        }

        OptionalString(ref w, MqttPropertyId.ServerReference, p.ServerReference);
        OptionalString(ref w, MqttPropertyId.ReasonString, p.ReasonString);
        UserProperties(ref w, p.UserProperties);
    }

    private static void AuthContent(ref MqttBufferWriter w, MqttAuthPacket p)
    {
        Authentication(ref w, p.AuthenticationMethod, p.AuthenticationData);
        OptionalString(ref w, MqttPropertyId.ReasonString, p.ReasonString);
        UserProperties(ref w, p.UserProperties);
    }

    private static void Authentication(ref MqttBufferWriter w, string? method, ReadOnlyMemory<byte>? data)
    {
        OptionalString(ref w, MqttPropertyId.AuthenticationMethod, method);
        if (data is { } bytes)
        {
            w.WriteByte((byte)MqttPropertyId.AuthenticationData);
            w.WriteBinary(bytes.Span);
        }
    }

    private static void UserProperties(ref MqttBufferWriter w, ImmutableArray<MqttUserProperty> properties)
    {
        if (properties.IsDefaultOrEmpty)
        {
            return;
        }

        foreach (var property in properties)
        {
            w.WriteByte((byte)MqttPropertyId.UserProperty);
            w.WriteString(property.Name);
            w.WriteString(property.Value);
        }
    }

    private static void OptionalString(ref MqttBufferWriter w, MqttPropertyId id, string? value)
    {
        if (value is not null)
        {
            w.WriteByte((byte)id);
            w.WriteString(value);
        }
    }

    private static void Byte(ref MqttBufferWriter w, MqttPropertyId id, byte value)
    {
        w.WriteByte((byte)id);
        w.WriteByte(value);
    }

    private static void UInt16(ref MqttBufferWriter w, MqttPropertyId id, ushort value)
    {
        w.WriteByte((byte)id);
        w.WriteUInt16(value);
    }

    private static void UInt32(ref MqttBufferWriter w, MqttPropertyId id, uint value)
    {
        w.WriteByte((byte)id);
        w.WriteUInt32(value);
    }
}
