using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>What the session does with a QoS 2 PUBLISH its connection hands over (<see cref="InboundQos2Rules.Publish"/>).</summary>
/// <param name="Action">See <see cref="InboundQos2Flow.PublishAction"/>.</param>
/// <param name="Pending">The entry to journal (JournalPending) or to route again under its origin (RouteAgain).</param>
public readonly record struct InboundPublishDecision(InboundQos2Flow.PublishAction Action, InboundQos2Pending? Pending = null);

/// <summary>Where the storage of a routed QoS 2 message stands after the topic's or a subscriber's answer.</summary>
public enum InboundStorageAction : byte
{
    /// <summary>Still waiting on a routing result or a subscriber (or the answer is for nothing waiting).</summary>
    Waiting,

    /// <summary>A subscriber's full queue holds it, for the first time: the connection stops reading meanwhile.</summary>
    Held,

    /// <summary>Stored for every subscriber it was routed to: complete (<see cref="InboundQos2Rules.Complete"/>).</summary>
    Complete,

    /// <summary>Every answer is in and a full queue refused it: failed as refused (<see cref="InboundQos2Rules.Failed"/>).</summary>
    Refused,
}

/// <summary>The decision after a routing result or a delivery answer, for the client's <paramref name="PacketId"/>.</summary>
public readonly record struct InboundStorageDecision(InboundStorageAction Action, ushort PacketId = 0);

/// <summary>
/// A message stored everywhere: <paramref name="Acknowledge"/> (journal Stored, then PUBREC with
/// <paramref name="PubRecReason"/>), <paramref name="Seq"/> being its origin's sequence number to settle once Stored
/// is journaled; not acknowledged when the client released it meanwhile. Held messages route in both cases.
/// </summary>
public readonly record struct InboundCompleteDecision(bool Acknowledge, long Seq = 0, MqttReasonCode PubRecReason = MqttReasonCode.Success);

/// <summary>What a failed or refused inbound QoS 2 message becomes (<see cref="InboundQos2Rules.Failed"/>).</summary>
public enum InboundFailAction : byte
{
    /// <summary>The client released it meanwhile: nothing to tell.</summary>
    AlreadyReleased,

    /// <summary>
    /// A v5 client hears PUBREC ≥ 0x80, which ends the flow and frees the id: the pending entry is given up, journaled
    /// Released before the connection is told (a recovery must not route it again under an id the client may reuse).
    /// </summary>
    GiveUp,

    /// <summary>The connection is told (3.1.1: it disconnects and the client sends it again; the entry stays pending).</summary>
    Tell,
}

/// <summary>The decision for a failed message; <paramref name="RouteHeld"/>: the messages held behind it go now.</summary>
public readonly record struct InboundFailDecision(InboundFailAction Action, InboundQos2Pending? Pending = null, bool RouteHeld = false);

/// <summary>
/// The answer to a PUBREL (<see cref="InboundQos2Rules.Release"/>): PUBCOMP with <paramref name="PubCompReason"/>,
/// after Released is journaled unless <see cref="InboundQos2Flow.ReleaseAction.NotFound"/>; <paramref name="Seq"/>:
/// the origin's sequence number to settle (ReleasePending); <paramref name="RouteHeld"/>: the messages held behind it
/// go now (ReleasePending, not on its way: else they go once its routing ends).
/// </summary>
public readonly record struct InboundReleaseDecision(
    InboundQos2Flow.ReleaseAction Action,
    MqttReasonCode PubCompReason,
    long Seq = 0,
    bool RouteHeld = false);

/// <summary>
/// The rules of a session's inbound QoS 2 (the receiver's side of MQTT-4.3.3, method B), apart from the entity that
/// carries them out (SessionEntity.Inbound.cs). The state they read and advance is <see cref="InboundQos2Flow"/>'s
/// (held, pending, routing, origins) and <see cref="AckCollector{TState}"/>'s (confirmations still awaited).
/// <code>
///   PUBLISH P ─┬─ held (PUBREC sent) ──────────────► PUBREC again, route nothing          [MQTT-4.3.3-10]
///              ├─ its first copy on its way ─────────► nothing: PUBREC follows once stored [MQTT-4.3.3-10]
///              ├─ pending (accepted, not stored) ────► route again under the same origin
///              ├─ clean session ─────────────────────► route, no origin
///              └─ persistent ────────────────────────► journal Pending(P, origin), then route
///   routed ──► routing result + every subscriber's answer ─┬─ all stored ──► journal Stored, PUBREC 0x00 [MQTT-4.3.3-8]
///                                                          ├─ a full queue holds it ──► connection stops reading
///                                                          └─ refused / not in time ──► failed (see below)
///   failed ─┬─ released meanwhile ───► nothing
///           ├─ v5, pending ──────────► journal Released, then PUBREC 0x97 / 0x80 (the connection's code)
///           └─ otherwise ────────────► connection told (3.1.1: closed, resent, routed again under its origin)
///   PUBREL P ─┬─ held ───────────────► journal Released, PUBCOMP 0x00                   [MQTT-4.3.3-11]
///             ├─ pending (recovered) ► journal Released, PUBCOMP 0x00
///             └─ unknown ────────────► PUBCOMP 0x92 Packet Identifier not found (v5; 3.1.1 0x00)
/// </code>
/// The receiver "MUST respond with a PUBREC containing the Packet Identifier from the incoming PUBLISH packet, having
/// accepted ownership of the Application Message" [MQTT-4.3.3-8]; "Until it has received the corresponding PUBREL
/// packet, the receiver MUST acknowledge any subsequent PUBLISH packet with the same Packet Identifier by sending a
/// PUBREC. It MUST NOT cause duplicate messages to be delivered to any onward recipients in this case"
/// [MQTT-4.3.3-10]; it "MUST respond to a PUBREL packet by sending a PUBCOMP packet containing the same Packet
/// Identifier as the PUBREL" [MQTT-4.3.3-11], with 0x92 "Packet Identifier not found" when it holds no such message
/// (MQTT-v5.0 3.7.2.1). "If it has sent a PUBREC with a Reason Code of 0x80 or greater, the receiver MUST treat any
/// subsequent PUBLISH packet that contains that Packet Identifier as being a new Application Message" [MQTT-4.3.3-9]:
/// a refused message is given up. Whether the refusal reads 0x80 (not stored in time) or 0x97 (a full queue, or a
/// subscriber's session slow to confirm) is the connection's (<c>InboundChannel</c>); the session says which.
/// <para>
/// Pure and allocation-free: the state, the facts and the time (milliseconds) come in, a struct decision goes out; the
/// entity journals, routes, tells and counts from it, in its own order (Pending is journaled before routing; Stored
/// before PUBREC goes; Released before PUBCOMP).
/// </para>
/// </summary>
public static class InboundQos2Rules
{
    /// <summary>
    /// A QoS 2 PUBLISH from the session's connection. <paramref name="persistent"/>: the session is kept while its
    /// client is away (its messages are journaled as pending under an origin before they are routed);
    /// <paramref name="newStream"/>: a fresh origin stream, asked for once per session.
    /// </summary>
    public static InboundPublishDecision Publish(
        InboundQos2Flow flow,
        ushort packetId,
        MqttApplicationMessage message,
        bool persistent,
        Func<long> newStream)
    {
        var action = flow.OnPublish(packetId, message, persistent, newStream, out var pending);
        return new InboundPublishDecision(action, pending);
    }

    /// <summary>The topics said to how many sessions the message behind <paramref name="ackId"/> went.</summary>
    public static InboundStorageDecision Routed(AckCollector<ushort> acks, long ackId, int deliveries) =>
        acks.OnRouted(ackId, deliveries, out var packetId) ? Completed(acks, packetId) : default;

    /// <summary>
    /// <paramref name="count"/> subscribers' sessions answered for the message behind <paramref name="ackId"/> with
    /// <paramref name="outcome"/>: it counts as stored once it was routed and every session it went to stored it; a
    /// refusal among them makes it refused; a hold only pauses its publisher.
    /// </summary>
    public static InboundStorageDecision Stored(AckCollector<ushort> acks, long ackId, int count, DeliveryOutcome outcome, long nowMs)
    {
        if (outcome == DeliveryOutcome.Held)
        {
            return acks.MarkHeld(ackId, nowMs, out var heldId) ? new InboundStorageDecision(InboundStorageAction.Held, heldId) : default;
        }

        return acks.OnStored(ackId, out var packetId, count, outcome == DeliveryOutcome.Refused) ? Completed(acks, packetId) : default;
    }

    /// <summary>Every subscriber stored the message: acknowledged with PUBREC unless the client released it meanwhile.</summary>
    public static InboundCompleteDecision Complete(InboundQos2Flow flow, ushort packetId) =>
        flow.OnStored(packetId, out var seq) ? new InboundCompleteDecision(true, seq) : default;

    /// <summary>
    /// The message was not stored everywhere in time, or was refused: <paramref name="canRefuse"/> when a v5 client
    /// is connected to hear PUBREC ≥ 0x80 (see <see cref="CanRefuse"/>).
    /// </summary>
    public static InboundFailDecision Failed(InboundQos2Flow flow, ushort packetId, bool canRefuse)
    {
        if (!flow.OnFailed(packetId, canRefuse, out var pending))
        {
            return new InboundFailDecision(InboundFailAction.AlreadyReleased, RouteHeld: true);
        }

        if (pending is not null)
        {
            return new InboundFailDecision(InboundFailAction.GiveUp, pending, RouteHeld: true); // it will not be routed again
        }

        // Still pending (3.1.1: the client is disconnected and sends it again): if it blocks, it keeps blocking.
        return new InboundFailDecision(InboundFailAction.Tell, RouteHeld: !flow.IsPending(packetId));
    }

    /// <summary>Only a connected v5 client can be refused a message (PUBREC ≥ 0x80); 3.1.1 has no failure code.</summary>
    public static bool CanRefuse(bool connected, MqttProtocolVersion version) => connected && version == MqttProtocolVersion.V500;

    /// <summary>A PUBREL from the session's connection (<paramref name="flow"/>: null before any inbound QoS 2).</summary>
    public static InboundReleaseDecision Release(InboundQos2Flow? flow, ushort packetId, MqttProtocolVersion version)
    {
        long seq = 0;
        switch (flow?.OnRelease(packetId, out seq) ?? InboundQos2Flow.ReleaseAction.NotFound)
        {
            case InboundQos2Flow.ReleaseAction.Release:
                return new InboundReleaseDecision(InboundQos2Flow.ReleaseAction.Release, MqttReasonCode.Success);
            case InboundQos2Flow.ReleaseAction.ReleasePending:
                // PUBREC went before the session was recovered (its Stored was not journaled yet): the release ends
                // it, and a routing still on its way only meets subscribers who have it.
                return new InboundReleaseDecision(InboundQos2Flow.ReleaseAction.ReleasePending, MqttReasonCode.Success, seq, !flow!.IsRouting(packetId));
            default:
                // MQTT-v5.0 3.7.2.1: PUBCOMP "Packet Identifier not found" (3.1.1 has no reason and simply completes).
                return new InboundReleaseDecision(
                    InboundQos2Flow.ReleaseAction.NotFound,
                    version == MqttProtocolVersion.V500 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success);
        }
    }

    /// <summary>
    /// The sweep gives up on messages routed before this (not stored everywhere within Mqtt:DurableAckTimeout): they
    /// fail unrefused (v5 PUBREC 0x80; 3.1.1 closed), never acknowledged.
    /// </summary>
    public static long ExpiredBefore(long nowMs, int durableAckTimeoutSeconds) => nowMs - (durableAckTimeoutSeconds * 1000L);

    /// <summary>The sweep runs while a message is on its way to its subscribers.</summary>
    public static bool KeepsSweeping(int routing) => routing > 0;

    private static InboundStorageDecision Completed(AckCollector<ushort> acks, ushort packetId) =>
        new(acks.CompletedRefused ? InboundStorageAction.Refused : InboundStorageAction.Complete, packetId);
}
