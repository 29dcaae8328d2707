using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;

namespace Broker.Tests.Sessions;

/// <summary>
/// What a session does with a message routed to it, how its queue takes one, and what the client's acknowledgements
/// of the messages it sent mean, straight on <see cref="SessionDelivery"/> (SessionEntity.Delivery.cs and
/// SessionEntity.Flow.cs carry the decisions out).
/// </summary>
public sealed class SessionDeliverySpecs
{
    private const long Now = 1_800_000_000_000;
    private static readonly MessageOrigin Origin = new(Stream: 7, Seq: 3, LowWater: 0);

    private static MqttApplicationMessage Msg(MqttQoS qos = MqttQoS.AtLeastOnce, long expiresAt = 0, string publisher = "publisher") =>
        Message("t", qos, publisher: publisher) with { ExpiresAtUnixMs = expiresAt };

    private static QueuedMessage Resolved(MqttApplicationMessage message, MqttQoS? qos = null) =>
        new(message, qos ?? message.QoS, false, ImmutableArray<uint>.Empty);

    private static SeenOrigins SeenWith(string publisher, MessageOrigin origin)
    {
        var seen = new SeenOrigins();
        seen.Record(publisher, origin);
        return seen;
    }

    /// <summary>A message routed to a connected, persistent session with nobody waiting on its confirmation.</summary>
    private static DeliverDecision Deliver(
        MqttApplicationMessage message,
        QueuedMessage? resolved = null,
        bool unresolved = false,
        MessageOrigin? origin = null,
        SeenOrigins? seen = null,
        bool canHold = false,
        bool connected = true,
        bool persistent = true) =>
        SessionDelivery.Deliver(unresolved ? null : resolved ?? Resolved(message), message, origin, seen, canHold, connected, persistent, Now);

    // ---- routed to the session ----

    [Fact]
    public void A_message_no_subscription_takes_is_only_confirmed()
    {
        Assert.Equal(new DeliverDecision(DeliverAction.Unresolved), Deliver(Msg(), unresolved: true));
        // Unresolved comes first: an expired message nobody takes is not counted as expired.
        Assert.Equal(new DeliverDecision(DeliverAction.Unresolved), Deliver(Msg(expiresAt: Now - 1), unresolved: true));
    }

    [Fact]
    public void A_message_whose_expiry_passed_is_confirmed_and_never_sent()
    {
        // [MQTT-3.3.2-5] the copy for a subscriber whose onward delivery has not started is deleted.
        Assert.Equal(new DeliverDecision(DeliverAction.Expired), Deliver(Msg(expiresAt: Now)));
        Assert.Equal(new DeliverDecision(DeliverAction.Expired), Deliver(Msg(MqttQoS.AtMostOnce, expiresAt: Now - 1)));
        Assert.Equal(DeliverAction.Offer, Deliver(Msg(expiresAt: Now + 1)).Action);
        Assert.Equal(DeliverAction.Offer, Deliver(Msg(expiresAt: 0)).Action); // 0: never expires
    }

    [Fact]
    public void A_QoS_2_message_routed_again_is_confirmed_once_stored_and_not_taken_twice()
    {
        // MQTT-v5.0 4.3.3: exactly once, also when the publisher's session moved while routing it.
        var seen = SeenWith("publisher", Origin);
        Assert.Equal(new DeliverDecision(DeliverAction.Duplicate),
            Deliver(Msg(MqttQoS.ExactlyOnce), origin: Origin, seen: seen, canHold: true));
        Assert.Equal(new DeliverDecision(DeliverAction.Duplicate),
            Deliver(Msg(MqttQoS.ExactlyOnce), origin: Origin, seen: seen, connected: false, persistent: false));
    }

    [Fact]
    public void An_origin_is_a_duplicate_only_for_the_same_publisher_and_position()
    {
        var seen = SeenWith("publisher", Origin);
        Assert.Equal(DeliverAction.Offer, Deliver(Msg(MqttQoS.ExactlyOnce, publisher: "other"), origin: Origin, seen: seen).Action);
        Assert.Equal(DeliverAction.Offer, Deliver(Msg(MqttQoS.ExactlyOnce), origin: Origin with { Seq = 4 }, seen: seen).Action);
        Assert.Equal(DeliverAction.Offer, Deliver(Msg(MqttQoS.ExactlyOnce), origin: Origin, seen: null).Action);
        Assert.Equal(DeliverAction.Offer, Deliver(Msg(MqttQoS.ExactlyOnce), origin: null, seen: seen).Action);
    }

    [Fact]
    public void An_expired_message_is_counted_as_expired_before_it_is_recognised_as_a_duplicate()
    {
        var seen = SeenWith("publisher", Origin);
        Assert.Equal(DeliverAction.Expired, Deliver(Msg(MqttQoS.ExactlyOnce, expiresAt: Now), origin: Origin, seen: seen).Action);
    }

    [Fact]
    public void QoS_0_goes_straight_to_a_connected_client_and_is_confirmed()
    {
        Assert.Equal(new DeliverDecision(DeliverAction.SendQos0), Deliver(Msg(MqttQoS.AtMostOnce)));
        // A QoS 1 message to a QoS 0 subscription is delivered at QoS 0 (MQTT-v5.0 3.8.4: the lesser QoS).
        Assert.Equal(new DeliverDecision(DeliverAction.SendQos0), Deliver(Msg(), Resolved(Msg(), MqttQoS.AtMostOnce)));
    }

    [Fact]
    public void QoS_0_with_someone_waiting_is_a_probe_the_connection_confirms_once_written()
    {
        Assert.Equal(new DeliverDecision(DeliverAction.SendQos0Probe), Deliver(Msg(MqttQoS.AtMostOnce), canHold: true));
    }

    [Fact]
    public void QoS_0_is_not_kept_for_an_offline_client_even_by_a_persistent_session()
    {
        // MQTT-v5.0 4.1: QoS 0 messages are only optionally part of the session state.
        Assert.Equal(new DeliverDecision(DeliverAction.DropQos0), Deliver(Msg(MqttQoS.AtMostOnce), connected: false));
        Assert.Equal(new DeliverDecision(DeliverAction.DropQos0), Deliver(Msg(MqttQoS.AtMostOnce), connected: false, canHold: true));
    }

    [Fact]
    public void The_origin_of_a_QoS_0_message_is_remembered_whether_it_is_sent_or_dropped()
    {
        Assert.Equal(new DeliverDecision(DeliverAction.SendQos0, RecordOrigin: true), Deliver(Msg(MqttQoS.AtMostOnce), origin: Origin));
        Assert.Equal(new DeliverDecision(DeliverAction.DropQos0, RecordOrigin: true),
            Deliver(Msg(MqttQoS.AtMostOnce), origin: Origin, connected: false));
        // QoS 1/2 origins are journaled with the message when it is queued, not here.
        Assert.Equal(new DeliverDecision(DeliverAction.Offer), Deliver(Msg(MqttQoS.ExactlyOnce), origin: Origin));
    }

    [Fact]
    public void QoS_1_and_2_are_offered_to_the_queue_unless_the_client_is_away_and_nothing_is_kept()
    {
        // [MQTT-3.1.2-23] a session with an expiry stores its state, messages included, while its client is away.
        Assert.Equal(new DeliverDecision(DeliverAction.Offer), Deliver(Msg(), connected: false, persistent: true));
        Assert.Equal(new DeliverDecision(DeliverAction.Offer), Deliver(Msg(MqttQoS.ExactlyOnce), connected: true, persistent: false));
        Assert.Equal(new DeliverDecision(DeliverAction.DropOffline), Deliver(Msg(), connected: false, persistent: false));
        Assert.Equal(new DeliverDecision(DeliverAction.DropOffline), Deliver(Msg(MqttQoS.ExactlyOnce), connected: false, persistent: false, canHold: true));
    }

    // ---- at the queue ----

    private static MessageQueue Filled(int capacity, int count)
    {
        var queue = new MessageQueue(capacity, dropOldest: false);
        for (var i = 0; i < count; i++)
        {
            queue.Enqueue(Queued("q" + i));
        }

        return queue;
    }

    [Fact]
    public void The_first_delivery_held_starts_the_check_of_held_publishers()
    {
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, maxHoldMs: 2000);
        var full = Filled(4, 4);
        Assert.Equal(new OfferDecision(Admission.Hold, true, TimeSpan.FromMilliseconds(500)), SessionDelivery.Offer(admission, full, canHold: true));

        var deliver = new Deliver("c", Msg(), null, null, Akka.Actor.ActorRefs.Nobody, 1);
        admission.Hold(deliver, Resolved(deliver.Message), 0);
        Assert.Equal(new OfferDecision(Admission.Hold), SessionDelivery.Offer(admission, full, canHold: true)); // already running
    }

    [Fact]
    public void The_hold_check_runs_four_times_per_longest_hold_within_50_ms_and_1_s()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(50), SessionDelivery.HoldCheckInterval(100));
        Assert.Equal(TimeSpan.FromMilliseconds(250), SessionDelivery.HoldCheckInterval(1000));
        Assert.Equal(TimeSpan.FromSeconds(1), SessionDelivery.HoldCheckInterval(60_000));
    }

    [Fact]
    public void The_queue_admission_decides_what_is_taken_dropped_or_refused()
    {
        Assert.Equal(new OfferDecision(Admission.Take), SessionDelivery.Offer(new QueueAdmission(QueueFullPolicy.Backpressure, 1000), Filled(4, 3), canHold: true));
        Assert.Equal(new OfferDecision(Admission.DropNewest), SessionDelivery.Offer(new QueueAdmission(QueueFullPolicy.DropNewest, 1000), Filled(4, 4), canHold: true));
        Assert.Equal(new OfferDecision(Admission.Take), SessionDelivery.Offer(new QueueAdmission(QueueFullPolicy.DropOldest, 1000), Filled(4, 4), canHold: true));
        // Nobody to make wait (a retained message for a new subscription): taken beyond the bound, not held.
        Assert.Equal(new OfferDecision(Admission.Take), SessionDelivery.Offer(new QueueAdmission(QueueFullPolicy.Backpressure, 1000), Filled(4, 4), canHold: false));
    }

    [Fact]
    public void A_delivery_taken_is_queued_by_reference_only_in_a_persistent_session_with_a_stored_payload()
    {
        Assert.Equal(TakeAction.QueueByReference, SessionDelivery.Take(null, "publisher", null, payloadId: 42, persistent: true));
        Assert.Equal(TakeAction.Queue, SessionDelivery.Take(null, "publisher", null, payloadId: 42, persistent: false));
        Assert.Equal(TakeAction.Queue, SessionDelivery.Take(null, "publisher", null, payloadId: 0, persistent: true));
    }

    [Fact]
    public void A_QoS_2_message_released_from_a_hold_after_its_copy_was_taken_is_taken_once()
    {
        var seen = SeenWith("publisher", Origin);
        Assert.Equal(TakeAction.Duplicate, SessionDelivery.Take(Origin, "publisher", seen, payloadId: 42, persistent: true));
        Assert.Equal(TakeAction.Queue, SessionDelivery.Take(Origin, "other", seen, payloadId: 0, persistent: true));
    }

    // ---- the client's acknowledgements ----

    /// <summary>A flow with <paramref name="qos"/> messages sent under ids 1, 2, ... (stored, in flight).</summary>
    private static OutboundFlow InFlight(MqttQoS qos, int count, int window = 32)
    {
        var flow = new OutboundFlow(new MessageQueue(1000), new InflightWindow(window));
        for (var i = 0; i < count; i++)
        {
            flow.Enqueue(Queued("m" + i, qos), mayDrop: true, out _);
        }

        flow.StoredBelow = flow.NextSeq;
        while (flow.Next(Now).Send is not null)
        {
        }

        return flow;
    }

    private static OutboundAckDecision Ack(OutboundFlow flow, MqttPacketType type, ushort id, MqttReasonCode reason = MqttReasonCode.Success,
        MqttProtocolVersion version = MqttProtocolVersion.V500) =>
        SessionDelivery.OnAck(flow, type, id, reason, version);

    [Fact]
    public void PUBACK_completes_a_QoS_1_message_and_nothing_else()
    {
        // [MQTT-4.3.2-3] unacknowledged until its PUBACK.
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Complete), Ack(InFlight(MqttQoS.AtLeastOnce, 1), MqttPacketType.PubAck, 1));
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Ignore), Ack(InFlight(MqttQoS.ExactlyOnce, 1), MqttPacketType.PubAck, 1));
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Ignore), Ack(InFlight(MqttQoS.AtLeastOnce, 1), MqttPacketType.PubAck, 2));
    }

    [Fact]
    public void PUBREC_releases_a_QoS_2_message_and_a_repeated_PUBREC_gets_PUBREL_again()
    {
        // [MQTT-4.3.3-4] PUBREL answers a PUBREC below 0x80; the release is journaled before it goes.
        var flow = InFlight(MqttQoS.ExactlyOnce, 1);
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Release), Ack(flow, MqttPacketType.PubRec, 1));
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Ignore), Ack(flow, MqttPacketType.PubComp, 1)); // not released yet

        flow.Release(1, recovering: false); // MessageReleased applied
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.PubRelAgain), Ack(flow, MqttPacketType.PubRec, 1));
        // [MQTT-4.3.3-5] the PUBREL is unacknowledged until its PUBCOMP.
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Complete), Ack(flow, MqttPacketType.PubComp, 1));
    }

    [Fact]
    public void A_PUBREC_with_a_failure_reason_ends_the_exchange()
    {
        // MQTT-v5.0 4.3.3: a PUBREC of 0x80 or more completes the message; no PUBREL goes.
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Complete),
            Ack(InFlight(MqttQoS.ExactlyOnce, 1), MqttPacketType.PubRec, 1, MqttReasonCode.UnspecifiedError));
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Release),
            Ack(InFlight(MqttQoS.ExactlyOnce, 1), MqttPacketType.PubRec, 1, MqttReasonCode.NoMatchingSubscribers)); // 0x10
    }

    [Fact]
    public void A_PUBREC_for_an_id_not_in_flight_is_answered_with_Packet_Identifier_not_found()
    {
        // MQTT-v5.0 3.6.2.1: 0x92; 3.1.1's PUBREL has no reason code.
        var flow = InFlight(MqttQoS.ExactlyOnce, 1);
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.PubRelNotFound, MqttReasonCode.PacketIdentifierNotFound),
            Ack(flow, MqttPacketType.PubRec, 9));
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.PubRelNotFound, MqttReasonCode.Success),
            Ack(flow, MqttPacketType.PubRec, 9, version: MqttProtocolVersion.V311));
        Assert.Equal(new OutboundAckDecision(OutboundAckAction.Ignore), Ack(flow, MqttPacketType.PubComp, 9));
    }

    [Fact]
    public void Only_a_completion_frees_a_place_in_the_clients_Receive_Maximum()
    {
        // [MQTT-3.3.4-9] no more than Receive Maximum QoS 1/2 PUBLISHes without PUBACK, PUBCOMP or PUBREC >= 0x80.
        var flow = InFlight(MqttQoS.ExactlyOnce, 3, window: 2);
        Assert.Equal(2, flow.Inflight.Count);
        Assert.Null(flow.Next(Now).Send);

        Assert.Equal(OutboundAckAction.Release, Ack(flow, MqttPacketType.PubRec, 1).Action);
        flow.Release(1, recovering: false);
        Assert.Null(flow.Next(Now).Send); // released, still counted

        Assert.Equal(OutboundAckAction.Complete, Ack(flow, MqttPacketType.PubComp, 1).Action);
        flow.Complete(1, recovering: false);
        var next = flow.Next(Now);
        Assert.Equal(("m2", (ushort)3), (PayloadOf(next.Send!), next.PacketId)); // [MQTT-4.6.0-6] in order
    }

    [Fact]
    public void A_resumed_session_sends_PUBREL_for_a_released_message_and_the_PUBLISH_with_DUP_otherwise_in_order()
    {
        // [MQTT-4.4.0-1] unacknowledged PUBLISH and PUBREL go again under their ids; [MQTT-4.3.3-6] never the PUBLISH
        // of a message whose PUBREL was sent.
        var flow = InFlight(MqttQoS.ExactlyOnce, 3);
        flow.Release(2, recovering: false);
        Assert.Equal(
            [((ushort)1, ResendAction.PublishDup), ((ushort)2, ResendAction.PubRel), ((ushort)3, ResendAction.PublishDup)],
            flow.Inflight.Entries.Select(e => (e.PacketId, SessionDelivery.Resend(e))));
    }

    [Fact]
    public void Deliveries_held_when_the_session_ends_are_confirmed_and_when_it_only_stops_refused()
    {
        Assert.Equal(DeliveryOutcome.Stored, SessionDelivery.HeldAnswer(ended: true));
        Assert.Equal(DeliveryOutcome.Refused, SessionDelivery.HeldAnswer(ended: false));
    }

    // ---- the hot path ----

    [Fact]
    public void Deciding_a_delivery_or_an_acknowledgement_allocates_nothing()
    {
        var seen = SeenWith("publisher", Origin);
        var qos0 = Msg(MqttQoS.AtMostOnce);
        var qos1 = Msg();
        var resolved0 = Resolved(qos0);
        var resolved1 = Resolved(qos1);
        var flow = InFlight(MqttQoS.AtLeastOnce, 1);
        var admission = new QueueAdmission(QueueFullPolicy.Backpressure, 1000);
        var queue = Filled(4, 1);

        var other = Origin with { Seq = 99 };

        void Run()
        {
            SessionDelivery.Deliver(resolved0, qos0, Origin, seen, false, true, true, Now); // QoS 0, origin remembered
            SessionDelivery.Deliver(resolved1, qos1, other, seen, true, true, true, Now); // offered, origin looked up
            SessionDelivery.Deliver(resolved1, qos1, Origin, seen, true, true, true, Now); // duplicate
            SessionDelivery.Deliver(resolved1, qos1, null, null, true, false, false, Now); // dropped offline
            SessionDelivery.Offer(admission, queue, canHold: true);
            SessionDelivery.Take(Origin, "publisher", seen, 0, true);
            SessionDelivery.OnAck(flow, MqttPacketType.PubAck, 1, MqttReasonCode.Success, MqttProtocolVersion.V500);
            SessionDelivery.OnAck(flow, MqttPacketType.PubRec, 9, MqttReasonCode.Success, MqttProtocolVersion.V500);
        }

        Run(); // JIT-compiled first
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            Run();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
