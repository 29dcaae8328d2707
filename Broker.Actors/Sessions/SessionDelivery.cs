using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>What a session does with a message routed to it (<see cref="SessionDelivery.Deliver"/>).</summary>
public enum DeliverAction : byte
{
    /// <summary>No subscription of this session takes it (or the session is ending): confirmed, as by a session that is gone.</summary>
    Unresolved,

    /// <summary>Its Message Expiry Interval passed before it reached the session: counted, confirmed, never sent [MQTT-3.3.2-5].</summary>
    Expired,

    /// <summary>A QoS 2 message routed again, stored here already or on its way: confirmed once every write so far is stored.</summary>
    Duplicate,

    /// <summary>QoS 0 with a back-pressure probe to a connected client: sent; the connection confirms it once written.</summary>
    SendQos0Probe,

    /// <summary>QoS 0 to a connected client: sent and confirmed.</summary>
    SendQos0,

    /// <summary>QoS 0 with no client connected: dropped and confirmed (it is not kept for an offline client).</summary>
    DropQos0,

    /// <summary>QoS 1/2 for a session that keeps nothing while its client is away: dropped and confirmed.</summary>
    DropOffline,

    /// <summary>QoS 1/2: offered to the queue (<see cref="SessionDelivery.Offer"/>).</summary>
    Offer,
}

/// <summary>
/// The decision for a delivery. <paramref name="RecordOrigin"/>: a QoS 0 message with an origin, which the session
/// remembers (in memory only) so that the same message routed again is recognised.
/// </summary>
public readonly record struct DeliverDecision(DeliverAction Action, bool RecordOrigin = false);

/// <summary>How a QoS 1/2 delivery the queue admits is taken (<see cref="SessionDelivery.Take"/>).</summary>
public enum TakeAction : byte
{
    /// <summary>A QoS 2 message routed again while its first copy was held: taken once; confirmed once every write so far is stored.</summary>
    Duplicate,

    /// <summary>Persistent, with a payload stored once for all its subscribers: queued by reference to it.</summary>
    QueueByReference,

    /// <summary>Queued with its payload (journaled first when persistent), confirmed once stored.</summary>
    Queue,
}

/// <summary>
/// The decision for a QoS 1/2 delivery at the queue: the admission, and whether the periodic check of held
/// publishers starts (the first delivery held), every <paramref name="HoldCheckEvery"/>.
/// </summary>
public readonly record struct OfferDecision(Admission Admission, bool StartHoldCheck = false, TimeSpan HoldCheckEvery = default);

/// <summary>What a session does about a client's acknowledgement of an outbound message (<see cref="SessionDelivery.OnAck"/>).</summary>
public enum OutboundAckAction : byte
{
    /// <summary>Nothing: not in flight (a PUBACK or PUBCOMP), or not what its state expects.</summary>
    Ignore,

    /// <summary>A PUBREC for an id not in flight: answered with PUBREL (v5: 0x92 Packet Identifier not found).</summary>
    PubRelNotFound,

    /// <summary>Done (PUBACK, PUBCOMP, or PUBREC with a failure reason): the completion is journaled, the window slot is free.</summary>
    Complete,

    /// <summary>First PUBREC of a QoS 2 message: the release is journaled, then PUBREL goes.</summary>
    Release,

    /// <summary>PUBREC again for a released message: PUBREL goes again.</summary>
    PubRelAgain,
}

/// <summary>The decision for an outbound acknowledgement; <paramref name="PubRelReason"/> is the reason code of a PUBREL to send.</summary>
public readonly record struct OutboundAckDecision(OutboundAckAction Action, MqttReasonCode PubRelReason = MqttReasonCode.Success);

/// <summary>What goes again for a message in flight when its client resumes the session (<see cref="SessionDelivery.Resend"/>).</summary>
public enum ResendAction : byte
{
    /// <summary>Awaiting PUBACK or PUBREC: the PUBLISH again, with DUP, under its id.</summary>
    PublishDup,

    /// <summary>Released (PUBREC received): PUBREL again, never the PUBLISH.</summary>
    PubRel,
}

/// <summary>
/// The delivery rules of a session, apart from the entity that carries them out (SessionEntity.Delivery.cs,
/// SessionEntity.Flow.cs): what becomes of a message routed to the session, how the queue takes a QoS 1/2 message,
/// and what the client's PUBACK/PUBREC/PUBCOMP for a message the session sent mean.
/// <code>
///   Deliver ──unresolved / ending──────────────────────────► confirm
///      │    ──expired [MQTT-3.3.2-5]────────────────────────► count, confirm
///      │    ──QoS 2 origin seen──────────────────────────────► confirm after the writes so far
///      │    ──QoS 0: connected ──► send (+ confirm, or the connection confirms a probe once written)
///      │             offline ────► drop, confirm
///      │    ──QoS 1/2: offline, keeps nothing ──► drop, confirm
///      └──► Offer ──► QueueAdmission: Take | Hold | Refuse | DropNewest | Overflow
///                       Take ──► origin seen: confirm after writes | by reference | queue (journal, confirm, pump)
///
///   in flight ──PUBACK (QoS 1) / PUBREC ≥ 0x80 / PUBCOMP after PUBREL──► complete (journal), pump
///             ──PUBREC (QoS 2)──► release (journal), then PUBREL ──PUBREC again──► PUBREL again
///   not in flight ──PUBREC──► PUBREL 0x92 (v5) ; PUBACK / PUBCOMP ──► ignored
///   client resumes ──► in flight again, in order: released ──► PUBREL ; otherwise ──► PUBLISH with DUP
///   session goes with deliveries held ──► ended: confirmed ; stopped: refused
/// </code>
/// "The Server MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH packets for which it has not received
/// PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128 or greater from the Client" [MQTT-3.3.4-9]: a completion frees
/// a slot of the window (<see cref="OutboundFlow"/>), a release does not. The sender "MUST treat the PUBLISH packet as
/// unacknowledged until it has received the corresponding PUBACK" [MQTT-4.3.2-3] (QoS 1), "MUST send a PUBREL packet
/// when it receives a PUBREC packet with a Reason Code value less than 0x80" [MQTT-4.3.3-4] and "MUST treat the PUBREL
/// packet as unacknowledged until it has received the corresponding PUBCOMP" [MQTT-4.3.3-5] (QoS 2). QoS 0 is not part
/// of the session state kept for an offline client (MQTT-v5.0 4.1: only "optionally").
/// <para>
/// Pure and allocation-free: facts and the time (Unix milliseconds) come in, a struct decision goes out; the entity
/// tells, journals, counts, logs and starts timers from it, in its own order.
/// </para>
/// </summary>
public static class SessionDelivery
{
    /// <summary>
    /// <paramref name="message"/> routed to the session. <paramref name="resolved"/>: what it becomes for this
    /// session's subscriptions (null when none takes it, or the session is ending); <paramref name="origin"/>: where
    /// in its publisher's stream it comes from (QoS 2); <paramref name="seen"/>: the origins the session has taken;
    /// <paramref name="canHold"/>: someone waits on its confirmation; <paramref name="connected"/>: a client is
    /// connected; <paramref name="persistent"/>: the session keeps its state while its client is away.
    /// </summary>
    public static DeliverDecision Deliver(
        QueuedMessage? resolved,
        MqttApplicationMessage message,
        MessageOrigin? origin,
        SeenOrigins? seen,
        bool canHold,
        bool connected,
        bool persistent,
        long nowMs)
    {
        if (resolved is null)
        {
            return new DeliverDecision(DeliverAction.Unresolved);
        }

        if (message.IsExpired(nowMs))
        {
            return new DeliverDecision(DeliverAction.Expired);
        }

        if (Seen(origin, message.PublisherClientId, seen))
        {
            // The same QoS 2 message routed again (its publisher's session moved or failed while routing it): taken
            // once (MQTT-v5.0 4.3.3: exactly once).
            return new DeliverDecision(DeliverAction.Duplicate);
        }

        if (resolved.QoS == MqttQoS.AtMostOnce)
        {
            // Neither queued nor kept for an offline client; its origin is remembered while the session lives.
            var record = origin is not null;
            if (!connected)
            {
                return new DeliverDecision(DeliverAction.DropQos0, record);
            }

            return new DeliverDecision(canHold ? DeliverAction.SendQos0Probe : DeliverAction.SendQos0, record);
        }

        return new DeliverDecision(!connected && !persistent ? DeliverAction.DropOffline : DeliverAction.Offer);
    }

    /// <summary>
    /// A QoS 1/2 delivery offered to the queue: <see cref="QueueAdmission.Admit"/>, and the check of held publishers
    /// starts with the first one held (every quarter of the longest hold, within 50 ms to 1 s).
    /// </summary>
    public static OfferDecision Offer(QueueAdmission admission, MessageQueue queue, bool canHold)
    {
        var admitted = admission.Admit(queue, canHold);
        if (admitted == Admission.Hold && admission.HeldCount == 0)
        {
            return new OfferDecision(admitted, true, HoldCheckInterval(admission.MaxHoldMs));
        }

        return new OfferDecision(admitted);
    }

    /// <summary>How often held publishers are checked against the longest hold.</summary>
    public static TimeSpan HoldCheckInterval(long maxHoldMs) => TimeSpan.FromMilliseconds(Math.Clamp(maxHoldMs / 4, 50, 1000));

    /// <summary>
    /// A QoS 1/2 delivery the queue takes (now, or released from a hold). <paramref name="payloadId"/>: a payload
    /// stored once for all its subscribers (0: none).
    /// </summary>
    public static TakeAction Take(MessageOrigin? origin, string publisher, SeenOrigins? seen, long payloadId, bool persistent)
    {
        if (Seen(origin, publisher, seen))
        {
            return TakeAction.Duplicate;
        }

        return payloadId != 0 && persistent ? TakeAction.QueueByReference : TakeAction.Queue;
    }

    /// <summary>
    /// The client's PUBACK, PUBREC or PUBCOMP for <paramref name="packetId"/>, from the connection the session sends
    /// to (<paramref name="version"/>: its protocol). The flow is not changed: the entity journals the completion or
    /// release and applies it.
    /// </summary>
    public static OutboundAckDecision OnAck(
        OutboundFlow flow,
        MqttPacketType type,
        ushort packetId,
        MqttReasonCode reason,
        MqttProtocolVersion version)
    {
        switch (flow.OnAck(type, packetId, reason))
        {
            case OutboundFlow.AckAction.Unknown when type == MqttPacketType.PubRec:
                // MQTT-v5.0 3.6.2.1: PUBREL for an unknown id carries "Packet Identifier not found" (3.1.1 has no reason).
                return new OutboundAckDecision(
                    OutboundAckAction.PubRelNotFound,
                    version == MqttProtocolVersion.V500 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success);
            case OutboundFlow.AckAction.Complete:
                return new OutboundAckDecision(OutboundAckAction.Complete);
            case OutboundFlow.AckAction.Release:
                return new OutboundAckDecision(OutboundAckAction.Release);
            case OutboundFlow.AckAction.PubRelAgain:
                return new OutboundAckDecision(OutboundAckAction.PubRelAgain);
            default:
                return new OutboundAckDecision(OutboundAckAction.Ignore);
        }
    }

    /// <summary>
    /// A message in flight when the client resumes the session: "When a Client reconnects with Clean Start set to 0 and
    /// a session is present, both the Client and Server MUST resend any unacknowledged PUBLISH packets (where QoS &gt; 0)
    /// and PUBREL packets using their original Packet Identifiers" [MQTT-4.4.0-1], with DUP [MQTT-3.3.1-1]; the sender
    /// "MUST NOT re-send the PUBLISH once it has sent the corresponding PUBREL packet" [MQTT-4.3.3-6].
    /// </summary>
    public static ResendAction Resend(InflightMessage entry) => entry.Released ? ResendAction.PubRel : ResendAction.PublishDup;

    /// <summary>
    /// The answer to a delivery still held (unconfirmed) when the session goes: a session that ends drops it with
    /// itself and confirms it, as a session that is gone would (<see cref="DeliveryOutcome.Stored"/>); one that only
    /// stops (moves or leaves memory) did not take it, and refuses it (<see cref="DeliveryOutcome.Refused"/>).
    /// </summary>
    public static DeliveryOutcome HeldAnswer(bool ended) => ended ? DeliveryOutcome.Stored : DeliveryOutcome.Refused;

    private static bool Seen(MessageOrigin? origin, string publisher, SeenOrigins? seen) =>
        origin is not null && seen?.Contains(publisher, origin) == true;
}
