using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Sessions;

namespace Broker.Channel;

/// <summary>What becomes of a message the session hands the connection to send.</summary>
public enum OutboundVerdict : byte
{
    /// <summary>Write the packet.</summary>
    Send,

    /// <summary>QoS 0 to a client whose socket is not writable: dropped (at most once allows it, memory stays bounded).</summary>
    DropSlowConsumer,

    /// <summary>Larger than the client's Maximum Packet Size: never sent, completed as if delivered [MQTT-3.1.2-25].</summary>
    DropTooLarge,
}

/// <summary>
/// The rules of a PUBLISH from the server to a client, apart from the connection actor that writes it
/// (ClientConnectionActor.Publish.cs, HandleSendPublish): what the packet carries and whether it goes at all.
/// <list type="bullet">
/// <item>QoS 0 may be dropped for a consumer that does not keep up (the socket is not writable); QoS 1 and 2 are held
///   by the session's window instead.</item>
/// <item>Message Expiry: "the PUBLISH packet sent to a Client by the Server MUST contain a Message Expiry Interval set
///   to the received value minus the time that the Application Message has been waiting in the Server"
///   [MQTT-3.3.2-6]; rounded up and at least 1 s, as a message that reached here has not expired. 3.1.1 has no
///   properties (the encoder writes none), so nothing is worked out for it.</item>
/// <item>Topic aliases (MQTT-v5.0 3.3.2.3.4): up to the client's Topic Alias Maximum, a topic the client knows an alias
///   for is sent by alias alone; a new one is taught (topic and alias) and remembered once that packet is sent.</item>
/// <item>Maximum Packet Size (MQTT-v5.0 3.1.2.11.4): "The Server MUST NOT send packets exceeding Maximum Packet Size to
///   the Client" [MQTT-3.1.2-24 of MQTT-v5.0; the same id is keep alive in 3.1.1]; "Where a Packet is too large to
///   send, the Server MUST discard it without sending it and then behave as if it had completed sending that
///   Application Message" [MQTT-3.1.2-25]. A new alias that would make the packet too large is not taught: the topic
///   goes plainly when that fits.</item>
/// <item>A QoS 1 or 2 message not sent (too large, or not readable by the client) is completed at the session as
///   delivered: PUBACK 0x00 for QoS 1, PUBREC 0x80 for QoS 2 (a PUBREC with a failure code ends the exchange,
///   MQTT-v5.0 4.3.3), so it does not hold the in-flight window.</item>
/// </list>
/// Pure and allocation-free beyond the packet itself: time comes in as Unix milliseconds, the verdict is an enum.
/// </summary>
public static class OutboundPublish
{
    /// <summary>Whether a message of <paramref name="qos"/> is dropped for a socket that is not <paramref name="writable"/>.</summary>
    public static bool DropsForSlowConsumer(MqttQoS qos, bool writable) => qos == MqttQoS.AtMostOnce && !writable;

    /// <summary>
    /// The PUBLISH for <paramref name="queued"/> with the session's packet id and DUP flag, its Message Expiry Interval
    /// set to what is left at <paramref name="nowUnixMs"/> (v5; read only when the message expires).
    /// </summary>
    public static MqttPublishPacket Packet(QueuedMessage queued, ushort packetId, bool dup, bool v5, long nowUnixMs)
    {
        var message = queued.Message;
        var properties = message.Properties;
        if (v5 && message.ExpiresAtUnixMs != 0)
        {
            properties = properties with { MessageExpiryInterval = RemainingExpirySeconds(message.ExpiresAtUnixMs, nowUnixMs) };
        }

        return new MqttPublishPacket
        {
            Topic = message.Topic,
            Payload = message.Payload,
            QoS = queued.QoS,
            Retain = queued.Retain,
            Dup = dup,
            PacketId = packetId,
            Properties = properties,
            SubscriptionIdentifiers = queued.SubscriptionIdentifiers,
        };
    }

    /// <summary>The Message Expiry Interval to forward: the seconds left, rounded up, at least 1 [MQTT-3.3.2-6].</summary>
    public static uint RemainingExpirySeconds(long expiresAtUnixMs, long nowUnixMs) =>
        (uint)Math.Max(1, (expiresAtUnixMs - nowUnixMs + 999) / 1000);

    /// <summary>
    /// Applies the client's topic aliases and Maximum Packet Size to <paramref name="packet"/> (replaced by its aliased
    /// form when an alias applies). <paramref name="aliases"/> is null when the client takes none; the size is measured
    /// only when the client set a limit (<paramref name="clientMaxPacketSize"/> below <see cref="uint.MaxValue"/>).
    /// </summary>
    public static OutboundVerdict Prepare(ref MqttPublishPacket packet, MqttProtocolVersion version, uint clientMaxPacketSize, TopicAliases? aliases)
    {
        var topic = packet.Topic;
        ushort alias = 0;
        var known = false;
        var candidate = packet;
        if (aliases is not null)
        {
            alias = aliases.OutboundAlias(topic, out known);
            if (alias != 0)
            {
                candidate = packet with { Topic = known ? "" : topic, TopicAlias = alias };
            }
        }

        if (clientMaxPacketSize != uint.MaxValue && MqttPacketEncoder.GetSize(candidate, version) > clientMaxPacketSize)
        {
            if (alias == 0 || known || MqttPacketEncoder.GetSize(packet, version) > clientMaxPacketSize)
            {
                return OutboundVerdict.DropTooLarge;
            }

            return OutboundVerdict.Send; // the plain packet fits where teaching the alias would not: the alias waits
        }

        if (alias != 0 && !known)
        {
            aliases!.RememberOutbound(topic, alias);
        }

        packet = candidate;
        return OutboundVerdict.Send;
    }

    /// <summary>How the session completes a QoS 1 or 2 message of <paramref name="qos"/> that is not sent to the client.</summary>
    public static (MqttPacketType Ack, MqttReasonCode Reason) CompletionOfUnsent(MqttQoS qos) => qos == MqttQoS.AtLeastOnce
        ? (MqttPacketType.PubAck, MqttReasonCode.Success)
        : (MqttPacketType.PubRec, MqttReasonCode.UnspecifiedError);
}
