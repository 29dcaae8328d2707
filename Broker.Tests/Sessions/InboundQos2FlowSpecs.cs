using Broker.Protocol;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;
using Action = Broker.Sessions.InboundQos2Flow.PublishAction;
using Release = Broker.Sessions.InboundQos2Flow.ReleaseAction;

namespace Broker.Tests.Sessions;

/// <summary>
/// Inbound QoS 2 of a session: method B of MQTT-4.3.3 (a PUBLISH is routed once; the same id again only gets PUBREC
/// until PUBREL), origins for exactly once across session moves, and what a recovered session does with PUBREL.
/// </summary>
public sealed class InboundQos2FlowSpecs
{
    private static readonly Broker.Routing.MqttApplicationMessage M = Message("t", MqttQoS.ExactlyOnce);

    private static InboundQos2Pending Journal(InboundQos2Flow flow, ushort id)
    {
        Assert.Equal(Action.JournalPending, flow.OnPublish(id, M, persistent: true, () => 77, out var pending));
        flow.Apply(pending!);
        Assert.True(flow.StillPending(pending!));
        return pending!;
    }

    [Fact]
    public void A_persistent_publish_is_journaled_routed_once_held_until_pubrel_and_the_id_is_then_new_again()
    {
        var flow = new InboundQos2Flow();
        var first = Journal(flow, 5);
        Assert.Equal((77L, 1L), (first.Stream, first.Seq));
        Assert.Equal(Action.AlreadyRouting, flow.OnPublish(5, M, true, () => 1, out _)); // DUP while routing

        Assert.True(flow.OnStored(5, out var seq));
        Assert.Equal(1, seq);
        flow.Apply(new InboundQos2Stored(5));
        Assert.Equal(Action.PubRecAgain, flow.OnPublish(5, M, true, () => 1, out _));

        Assert.Equal(Release.Release, flow.OnRelease(5, out _));
        flow.Apply(new InboundQos2Released(5));
        var second = Journal(flow, 5);
        Assert.Equal((77L, 2L), (second.Stream, second.Seq)); // same stream, next sequence number
    }

    [Fact]
    public void Origins_carry_the_lowest_sequence_number_that_may_still_be_routed_again()
    {
        var flow = new InboundQos2Flow();
        var a = Journal(flow, 1);
        var b = Journal(flow, 2);
        Assert.Equal(1, flow.OriginFor(a).LowWater);
        Assert.Equal(1, flow.OriginFor(b).LowWater);

        flow.Settled(a.Seq); // Stored of the first is journaled
        Assert.Equal(2, flow.OriginFor(b).LowWater);
    }

    [Fact]
    public void A_clean_session_routes_at_once_without_journaling()
    {
        var flow = new InboundQos2Flow();
        Assert.Equal(Action.Route, flow.OnPublish(3, M, persistent: false, () => throw new InvalidOperationException("no stream for a clean session"), out var pending));
        Assert.Null(pending);
        Assert.Equal(Action.AlreadyRouting, flow.OnPublish(3, M, false, () => 0, out _));
        Assert.True(flow.OnStored(3, out var seq));
        Assert.Equal(0, seq);
    }

    [Fact]
    public void A_recovered_session_routes_its_pending_messages_again_and_a_pubrel_meanwhile_ends_them()
    {
        var flow = new InboundQos2Flow();
        var pending = new InboundQos2Pending(9, 77, 4, M);
        flow.Restore([2], [pending], 77, 4);

        Assert.Equal([pending], flow.RouteRecovered());
        Assert.Equal(Action.PubRecAgain, flow.OnPublish(2, M, true, () => 1, out _)); // held before the recovery
        Assert.Equal(Action.AlreadyRouting, flow.OnPublish(9, M, true, () => 1, out _));

        // The client had PUBREC before the node died (Stored was not journaled yet) and now releases it.
        Assert.Equal(Release.ReleasePending, flow.OnRelease(9, out var seq));
        Assert.Equal(4, seq);
        flow.Apply(new InboundQos2Released(9));
        Assert.False(flow.OnStored(9, out _)); // the routing again completes: nothing more, no Stored, no PUBREC
        Assert.Equal(Action.JournalPending, flow.OnPublish(9, M, true, () => 1, out var next)); // the id is free
        Assert.Equal(5, next!.Seq);
    }

    [Fact]
    public void A_failed_storage_refuses_a_v5_client_after_releasing_and_a_311_client_resends_under_the_same_origin()
    {
        var flow = new InboundQos2Flow();
        var pending = Journal(flow, 4);
        Assert.True(flow.OnFailed(4, canRefuse: true, out var toRelease));
        Assert.Same(pending, toRelease);

        Assert.True(flow.OnFailed(4, canRefuse: false, out var none)); // 3.1.1: no release, routing stops
        Assert.Null(none);
        Assert.Equal(Action.RouteAgain, flow.OnPublish(4, M, true, () => 1, out var again)); // its DUP resend
        Assert.Same(pending, again);
    }

    [Fact]
    public void A_release_for_an_unknown_id_is_not_found_and_clean_start_forgets_everything()
    {
        var flow = new InboundQos2Flow();
        Assert.Equal(Release.NotFound, flow.OnRelease(1, out _));
        var pending = Journal(flow, 1);
        flow.Clear();
        Assert.False(flow.StillPending(pending));
        Assert.Equal(0, flow.PendingCount);
    }
}
