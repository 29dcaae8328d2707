using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;
using Publish = Broker.Sessions.InboundQos2Flow.PublishAction;
using Release = Broker.Sessions.InboundQos2Flow.ReleaseAction;

namespace Broker.Tests.Sessions;

/// <summary>
/// The receiver's side of QoS 2 in a session, straight on <see cref="InboundQos2Rules"/> (SessionEntity.Inbound.cs
/// carries the decisions out): what a PUBLISH again means, when a message counts as stored, what a failure gives up,
/// and how PUBREL is answered.
/// </summary>
public sealed class InboundQos2RulesSpecs
{
    private const long Now = 1_000_000;
    private static readonly MqttApplicationMessage M = Message("t", MqttQoS.ExactlyOnce);

    private static InboundQos2Pending Journal(InboundQos2Flow flow, ushort id)
    {
        var decision = InboundQos2Rules.Publish(flow, id, M, persistent: true, static () => 77);
        Assert.Equal(Publish.JournalPending, decision.Action);
        flow.Apply(decision.Pending!);
        Assert.True(flow.StillPending(decision.Pending!));
        return decision.Pending!;
    }

    /// <summary>A flow where <paramref name="id"/> was stored everywhere and PUBREC sent (Stored journaled).</summary>
    private static InboundQos2Flow Held(ushort id)
    {
        var flow = new InboundQos2Flow();
        Journal(flow, id);
        Assert.True(InboundQos2Rules.Complete(flow, id).Acknowledge);
        flow.Apply(new InboundQos2Stored(id));
        return flow;
    }

    // ---- PUBLISH ----

    [Fact]
    public void A_persistent_session_journals_a_new_message_as_pending_under_an_origin_before_routing_it()
    {
        var flow = new InboundQos2Flow();
        var decision = InboundQos2Rules.Publish(flow, 5, M, persistent: true, static () => 77);
        Assert.Equal(Publish.JournalPending, decision.Action);
        Assert.Equal(new InboundQos2Pending(5, 77, 1, M), decision.Pending);
    }

    [Fact]
    public void A_clean_session_routes_a_new_message_at_once_without_an_origin()
    {
        Assert.Equal(new InboundPublishDecision(Publish.Route), InboundQos2Rules.Publish(new InboundQos2Flow(), 5, M, false, static () => 77));
    }

    [Fact]
    public void The_same_id_again_before_pubrel_is_answered_with_pubrec_and_never_routed_twice()
    {
        // [MQTT-4.3.3-10] until PUBREL, a PUBLISH with the same id is acknowledged with PUBREC, no duplicate onward.
        var flow = new InboundQos2Flow();
        Journal(flow, 5);
        Assert.Equal(new InboundPublishDecision(Publish.AlreadyRouting), InboundQos2Rules.Publish(flow, 5, M, true, static () => 1));

        Assert.Equal(new InboundPublishDecision(Publish.PubRecAgain), InboundQos2Rules.Publish(Held(5), 5, M, true, static () => 1));
    }

    [Fact]
    public void A_pending_message_sent_again_after_its_routing_failed_is_routed_again_under_its_origin()
    {
        var flow = new InboundQos2Flow();
        var pending = Journal(flow, 5);
        Assert.Equal(InboundFailAction.Tell, InboundQos2Rules.Failed(flow, 5, canRefuse: false).Action); // 3.1.1: kept

        Assert.Equal(new InboundPublishDecision(Publish.RouteAgain, pending), InboundQos2Rules.Publish(flow, 5, M, true, static () => 1));
    }

    [Fact]
    public void After_pubcomp_the_same_id_is_a_new_message()
    {
        // [MQTT-4.3.3-12] after PUBCOMP, a PUBLISH with that id is a new Application Message.
        var flow = Held(5);
        Assert.Equal(Release.Release, InboundQos2Rules.Release(flow, 5, MqttProtocolVersion.V500).Action);
        flow.Apply(new InboundQos2Released(5));

        var again = InboundQos2Rules.Publish(flow, 5, M, true, static () => 1);
        Assert.Equal(Publish.JournalPending, again.Action);
        Assert.Equal(2, again.Pending!.Seq);
    }

    // ---- routed, stored ----

    [Fact]
    public void A_message_counts_as_stored_once_routed_and_every_subscriber_it_went_to_stored_it()
    {
        var acks = new AckCollector<ushort>();
        var ackId = acks.Expect(5, Now);
        Assert.Equal(default, InboundQos2Rules.Stored(acks, ackId, 1, DeliveryOutcome.Stored, Now)); // before the routing result
        Assert.Equal(default, InboundQos2Rules.Routed(acks, ackId, 2)); // one of two stored
        Assert.Equal(new InboundStorageDecision(InboundStorageAction.Complete, 5), InboundQos2Rules.Stored(acks, ackId, 1, DeliveryOutcome.Stored, Now));
        Assert.Equal(default, InboundQos2Rules.Stored(acks, ackId, 1, DeliveryOutcome.Stored, Now)); // nothing waits any more
    }

    [Fact]
    public void A_message_routed_to_nobody_counts_as_stored_at_once()
    {
        var acks = new AckCollector<ushort>();
        Assert.Equal(new InboundStorageDecision(InboundStorageAction.Complete, 9), InboundQos2Rules.Routed(acks, acks.Expect(9, Now), 0));
    }

    [Fact]
    public void A_refusal_by_one_subscriber_makes_the_message_refused_once_every_answer_is_in()
    {
        var acks = new AckCollector<ushort>();
        var ackId = acks.Expect(5, Now);
        Assert.Equal(default, InboundQos2Rules.Stored(acks, ackId, 1, DeliveryOutcome.Refused, Now));
        Assert.Equal(new InboundStorageDecision(InboundStorageAction.Refused, 5), InboundQos2Rules.Routed(acks, ackId, 1));
    }

    [Fact]
    public void A_full_queue_holding_the_message_pauses_its_publisher_once()
    {
        var acks = new AckCollector<ushort>();
        var ackId = acks.Expect(5, Now);
        Assert.Equal(new InboundStorageDecision(InboundStorageAction.Held, 5), InboundQos2Rules.Stored(acks, ackId, 1, DeliveryOutcome.Held, Now));
        Assert.Equal(default, InboundQos2Rules.Stored(acks, ackId, 1, DeliveryOutcome.Held, Now + 10));
        Assert.Equal(1, acks.HeldCount);
    }

    [Fact]
    public void A_stored_message_is_acknowledged_with_pubrec_0x00_and_its_origin_settled()
    {
        // [MQTT-4.3.3-8] PUBREC with the PUBLISH's id once ownership is accepted.
        var flow = new InboundQos2Flow();
        var pending = Journal(flow, 5);
        Assert.Equal(new InboundCompleteDecision(true, pending.Seq, MqttReasonCode.Success), InboundQos2Rules.Complete(flow, 5));
        Assert.Equal(new InboundCompleteDecision(true, 0), InboundQos2Rules.Complete(new InboundQos2Flow(), 6)); // clean: no origin
    }

    [Fact]
    public void A_message_released_while_routed_again_is_not_acknowledged_again_when_stored()
    {
        var flow = new InboundQos2Flow();
        var pending = Journal(flow, 5);
        var release = InboundQos2Rules.Release(flow, 5, MqttProtocolVersion.V500);
        Assert.Equal(new InboundReleaseDecision(Release.ReleasePending, MqttReasonCode.Success, pending.Seq, RouteHeld: false), release);
        flow.Apply(new InboundQos2Released(5));

        Assert.False(InboundQos2Rules.Complete(flow, 5).Acknowledge);
    }

    // ---- failed, refused ----

    [Fact]
    public void A_v5_client_refused_a_pending_message_gives_it_up_and_it_is_not_routed_again()
    {
        // [MQTT-4.3.3-9] after PUBREC >= 0x80 the id is a new message: the pending entry must go (Released journaled).
        var flow = new InboundQos2Flow();
        var pending = Journal(flow, 5);
        Assert.Equal(new InboundFailDecision(InboundFailAction.GiveUp, pending, RouteHeld: true), InboundQos2Rules.Failed(flow, 5, canRefuse: true));
    }

    [Fact]
    public void A_3_1_1_client_keeps_its_pending_message_which_goes_on_blocking_what_waits_behind_it()
    {
        var flow = new InboundQos2Flow();
        Journal(flow, 5);
        Assert.Equal(new InboundFailDecision(InboundFailAction.Tell, RouteHeld: false), InboundQos2Rules.Failed(flow, 5, canRefuse: false));

        // A clean session keeps nothing pending: what waited behind it goes.
        var clean = new InboundQos2Flow();
        Assert.Equal(Publish.Route, InboundQos2Rules.Publish(clean, 6, M, false, static () => 1).Action);
        Assert.Equal(new InboundFailDecision(InboundFailAction.Tell, RouteHeld: true), InboundQos2Rules.Failed(clean, 6, canRefuse: true));
    }

    [Fact]
    public void A_failure_of_a_message_the_client_released_meanwhile_tells_it_nothing()
    {
        var flow = new InboundQos2Flow();
        Journal(flow, 5);
        InboundQos2Rules.Release(flow, 5, MqttProtocolVersion.V500);
        flow.Apply(new InboundQos2Released(5));

        Assert.Equal(new InboundFailDecision(InboundFailAction.AlreadyReleased, RouteHeld: true), InboundQos2Rules.Failed(flow, 5, canRefuse: true));
    }

    [Theory]
    [InlineData(true, MqttProtocolVersion.V500, true)]
    [InlineData(false, MqttProtocolVersion.V500, false)]
    [InlineData(true, MqttProtocolVersion.V311, false)]
    public void Only_a_connected_v5_client_can_be_refused_a_message(bool connected, MqttProtocolVersion version, bool canRefuse)
    {
        Assert.Equal(canRefuse, InboundQos2Rules.CanRefuse(connected, version));
    }

    [Fact]
    public void The_sweep_gives_up_on_messages_routed_longer_ago_than_the_durable_ack_timeout_and_stops_when_none_is_on_its_way()
    {
        var acks = new AckCollector<ushort>();
        acks.Expect(1, Now - 15_001);
        acks.Expect(2, Now - 15_000);
        Assert.Equal(new ushort[] { 1 }, acks.RemoveStartedBefore(InboundQos2Rules.ExpiredBefore(Now, 15))!);
        Assert.True(InboundQos2Rules.KeepsSweeping(acks.Count));
        Assert.False(InboundQos2Rules.KeepsSweeping(0));
    }

    // ---- PUBREL ----

    [Fact]
    public void A_pubrel_for_a_held_message_is_answered_with_pubcomp_0x00()
    {
        // [MQTT-4.3.3-11] PUBCOMP with the PUBREL's id.
        Assert.Equal(new InboundReleaseDecision(Release.Release, MqttReasonCode.Success), InboundQos2Rules.Release(Held(5), 5, MqttProtocolVersion.V500));
        Assert.Equal(new InboundReleaseDecision(Release.Release, MqttReasonCode.Success), InboundQos2Rules.Release(Held(5), 5, MqttProtocolVersion.V311));
    }

    [Fact]
    public void A_pubrel_for_an_unknown_id_is_answered_with_0x92_in_v5_and_simply_completed_in_3_1_1()
    {
        // MQTT-v5.0 3.7.2.1: 0x92 Packet Identifier not found.
        var notFound = new InboundReleaseDecision(Release.NotFound, MqttReasonCode.PacketIdentifierNotFound);
        Assert.Equal(notFound, InboundQos2Rules.Release(Held(5), 6, MqttProtocolVersion.V500));
        Assert.Equal(notFound, InboundQos2Rules.Release(null, 6, MqttProtocolVersion.V500)); // no inbound QoS 2 yet
        Assert.Equal(new InboundReleaseDecision(Release.NotFound, MqttReasonCode.Success), InboundQos2Rules.Release(null, 6, MqttProtocolVersion.V311));
        Assert.Equal(new InboundReleaseDecision(Release.NotFound, MqttReasonCode.Success), InboundQos2Rules.Release(Held(5), 6, MqttProtocolVersion.V310));
    }

    [Fact]
    public void A_pubrel_for_a_message_pending_after_recovery_releases_it_and_what_waits_behind_goes_unless_it_is_on_its_way()
    {
        var flow = new InboundQos2Flow();
        var pending = new InboundQos2Pending(5, 77, 3, M);
        flow.Restore([], [pending], 77, 3); // recovered, not yet routed again
        Assert.Equal(new InboundReleaseDecision(Release.ReleasePending, MqttReasonCode.Success, 3, RouteHeld: true), InboundQos2Rules.Release(flow, 5, MqttProtocolVersion.V500));
    }

    // ---- the hot path ----

    [Fact]
    public void Deciding_a_publish_its_storage_and_its_release_allocates_nothing()
    {
        var held = Held(5);
        var routing = new InboundQos2Flow();
        Journal(routing, 7);
        var acks = new AckCollector<ushort>();
        var waiting = acks.Expect(8, Now); // waits on its routing result
        Func<long> stream = static () => 1;

        void Run()
        {
            InboundQos2Rules.Publish(held, 5, M, true, stream); // PUBREC again
            InboundQos2Rules.Publish(routing, 7, M, true, stream); // already on its way
            InboundQos2Rules.Stored(acks, waiting, 0, DeliveryOutcome.Stored, Now);
            InboundQos2Rules.Stored(acks, 999, 1, DeliveryOutcome.Held, Now);
            InboundQos2Rules.Routed(acks, 999, 1);
            InboundQos2Rules.Release(held, 6, MqttProtocolVersion.V500); // not found
            InboundQos2Rules.Release(null, 6, MqttProtocolVersion.V311);
            InboundQos2Rules.Failed(held, 6, canRefuse: false);
            InboundQos2Rules.ExpiredBefore(Now, 15);
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
