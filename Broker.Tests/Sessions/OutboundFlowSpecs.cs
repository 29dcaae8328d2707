using Broker.Protocol;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;
using AckAction = Broker.Sessions.OutboundFlow.AckAction;

namespace Broker.Tests.Sessions;

/// <summary>
/// The outbound state machine of a session: packet ids from positions, nothing sent before it is stored, an id never
/// used twice at once, and recovery that finds what a replayed acknowledgement was for and resends with DUP.
/// </summary>
public sealed class OutboundFlowSpecs
{
    private static OutboundFlow NewFlow(int window = 32) => new(new MessageQueue(100_000), new InflightWindow(window));

    private static void Enqueue(OutboundFlow flow, string payload, MqttQoS qos = MqttQoS.AtLeastOnce, bool recovering = false) =>
        flow.Enqueue(Queued(payload, qos), mayDrop: !recovering, out _);

    private static List<(string Payload, ushort Id, bool Dup)> Drain(OutboundFlow flow)
    {
        var sent = new List<(string, ushort, bool)>();
        while (flow.Next(0) is { Send: { } message } step)
        {
            sent.Add((PayloadOf(message), step.PacketId, step.Dup));
        }

        return sent;
    }

    [Fact]
    public void Packet_ids_are_positions_plus_one_and_wrap_after_65535()
    {
        Assert.Equal(1, QueuedMessage.PacketIdOf(0));
        Assert.Equal(65535, QueuedMessage.PacketIdOf(65534));
        Assert.Equal(1, QueuedMessage.PacketIdOf(65535));
        Assert.Equal(2, QueuedMessage.PacketIdOf(65536));
    }

    [Fact]
    public void A_message_goes_only_once_it_is_stored_in_order_under_its_positions_id()
    {
        var flow = NewFlow();
        Enqueue(flow, "a");
        Enqueue(flow, "b");
        Assert.Empty(Drain(flow)); // not stored yet

        flow.StoredBelow = 1; // "a" stored
        Assert.Equal([("a", (ushort)1, false)], Drain(flow));
        flow.StoredBelow = 2;
        Assert.Equal([("b", (ushort)2, false)], Drain(flow));
        Assert.Equal(2, flow.Inflight.Count);
    }

    [Fact]
    public void A_message_waits_while_one_in_flight_holds_its_id_and_the_window_bounds_what_goes()
    {
        var flow = NewFlow(window: 2);
        Enqueue(flow, "first"); // position 0, id 1
        flow.StoredBelow = flow.NextSeq;
        Assert.Single(Drain(flow));

        flow.NextSeq = 65535; // the next message's id is 1 again
        Enqueue(flow, "wrapped");
        Enqueue(flow, "after");
        flow.StoredBelow = flow.NextSeq;
        Assert.Empty(Drain(flow)); // id 1 is still in flight, and order holds

        Assert.Equal(AckAction.Complete, flow.OnAck(MqttPacketType.PubAck, 1, MqttReasonCode.Success));
        Assert.Equal("first", PayloadOf(flow.Complete(1, recovering: false)!));
        Assert.Equal([("wrapped", (ushort)1, false), ("after", (ushort)2, false)], Drain(flow));

        Enqueue(flow, "third");
        flow.StoredBelow = flow.NextSeq;
        Assert.Empty(Drain(flow)); // the window (2) is full
    }

    [Fact]
    public void Recovery_maps_replayed_acknowledgements_to_queued_messages_and_resends_the_rest_with_dup_under_the_same_ids()
    {
        // Live, three messages went out (ids 1..3); the client completed 1 and sent PUBREC for 2 (QoS 2); the node
        // died. The journal holds the queued events, the completion and the release, not the sends: replay them.
        var replayed = NewFlow();
        Enqueue(replayed, "q1-a", recovering: true);
        Enqueue(replayed, "q2-b", MqttQoS.ExactlyOnce, recovering: true);
        Enqueue(replayed, "q1-c", recovering: true);
        Assert.Equal("q1-a", PayloadOf(replayed.Complete(1, recovering: true)!));
        replayed.Release(2, recovering: true);
        replayed.Recovered(wasAttached: true);

        Assert.True(replayed.Inflight.TryGet(2, out var released) && released.Released); // PUBREL goes again, not PUBLISH
        Assert.Equal([("q1-c", (ushort)3, true)], Drain(replayed));
    }

    [Fact]
    public void After_a_clean_detach_only_what_was_sent_before_carries_dup()
    {
        var flow = NewFlow();
        Enqueue(flow, "sent-before", recovering: true);
        Enqueue(flow, "queued-offline", recovering: true);
        flow.SentBelow = 1; // from the SessionDetached event
        flow.Recovered(wasAttached: false);

        Assert.Equal([("sent-before", (ushort)1, true), ("queued-offline", (ushort)2, false)], Drain(flow));
    }

    [Fact]
    public void A_replayed_completion_for_no_message_changes_nothing_and_live_ones_need_the_window()
    {
        var flow = NewFlow();
        Enqueue(flow, "a", recovering: true);
        Assert.Null(flow.Complete(9, recovering: true));
        Assert.Null(flow.Complete(1, recovering: false)); // live: only what is in flight completes
        Assert.Equal(1, flow.Queue.Count);
    }

    [Fact]
    public void An_expired_head_is_reported_and_leaves_by_its_position()
    {
        var flow = NewFlow();
        flow.Enqueue(Queued("old") with { Message = Message("t", payload: "old") with { ExpiresAtUnixMs = 10 } }, true, out var old);
        Enqueue(flow, "fresh");
        flow.StoredBelow = flow.NextSeq;

        var step = flow.Next(nowMs: 20);
        Assert.Null(step.Send);
        Assert.Same(old, step.Expired);
        Assert.Same(old, flow.Discard(old.Seq));
        var next = flow.Next(20);
        Assert.Equal("fresh", PayloadOf(next.Send!));
        Assert.Equal(2, next.PacketId);
    }

    [Fact]
    public void Acknowledgements_follow_each_qos_flow()
    {
        var flow = NewFlow();
        Enqueue(flow, "one");
        Enqueue(flow, "two", MqttQoS.ExactlyOnce);
        flow.StoredBelow = flow.NextSeq;
        Drain(flow);

        Assert.Equal(AckAction.Unknown, flow.OnAck(MqttPacketType.PubAck, 7, MqttReasonCode.Success));
        Assert.Equal(AckAction.Ignore, flow.OnAck(MqttPacketType.PubRec, 1, MqttReasonCode.Success)); // QoS 1 gets no PUBREC
        Assert.Equal(AckAction.Complete, flow.OnAck(MqttPacketType.PubAck, 1, MqttReasonCode.Success));
        Assert.Equal(AckAction.Ignore, flow.OnAck(MqttPacketType.PubComp, 2, MqttReasonCode.Success)); // before PUBREC
        Assert.Equal(AckAction.Complete, flow.OnAck(MqttPacketType.PubRec, 2, MqttReasonCode.UnspecifiedError)); // v5: ends the flow
        Assert.Equal(AckAction.Release, flow.OnAck(MqttPacketType.PubRec, 2, MqttReasonCode.Success));
        flow.Release(2, recovering: false);
        Assert.Equal(AckAction.PubRelAgain, flow.OnAck(MqttPacketType.PubRec, 2, MqttReasonCode.Success));
        Assert.Equal(AckAction.Complete, flow.OnAck(MqttPacketType.PubComp, 2, MqttReasonCode.Success));
    }
}
