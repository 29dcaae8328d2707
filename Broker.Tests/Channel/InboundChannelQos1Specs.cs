using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Tests.Channel;

/// <summary>
/// When a QoS 1 publisher hears PUBACK, on <see cref="InboundChannel"/> directly: after every session stored the
/// message (the durability promise), 0x97 when one refused it, 0x80 when it was not stored in time; a 3.1.1 client,
/// which has no failure code, is not acknowledged. Messages accepted while an earlier one on their topic may have been
/// lost with a failed node wait for it and then go in order ([MQTT-4.6.0-6]).
/// </summary>
public sealed class InboundChannelQos1Specs
{
    private const long Now = 1_000_000;

    private static MqttPublishPacket Publish(ushort id, string topic = "t") =>
        new() { Topic = topic, QoS = MqttQoS.AtLeastOnce, PacketId = id, Payload = new byte[] { (byte)id } };

    private static InboundPublishDecision Accept(InboundChannel channel, ushort id, string topic = "t", bool nodesInTrouble = false) =>
        channel.Accept(Publish(id, topic), topic, "publisher", Now, Now, nodesInTrouble);

    [Fact]
    public void PUBACK_goes_only_once_the_topic_has_routed_and_every_session_has_stored_whatever_the_order()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        var ackId = Accept(channel, 1).AckId;
        Assert.False(channel.Stored(ackId, count: 1, refused: false, Now, out _)); // one session before the count came
        Assert.False(channel.Routed(ackId, deliveries: 2, Now, out _));
        Assert.Equal(1, channel.Qos1InFlight);
        Assert.True(channel.Stored(ackId, count: 1, refused: false, Now, out var done));
        Assert.Equal(new Qos1Completion(1, Refused: false, Acknowledge: true, MqttReasonCode.Success, RouteNow: null), done);
        Assert.Equal(0, channel.Qos1InFlight);
        Assert.False(channel.IsQos1Pending(ackId));
    }

    [Fact]
    public void A_message_a_full_queue_refused_is_answered_0x97_in_v5_and_not_at_all_in_3_1_1()
    {
        var v5 = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        var ackId = Accept(v5, 1).AckId;
        v5.Routed(ackId, deliveries: 1, Now, out _);
        Assert.True(v5.Stored(ackId, count: 1, refused: true, Now, out var refused));
        Assert.Equal(new Qos1Completion(1, Refused: true, Acknowledge: true, MqttReasonCode.QuotaExceeded, RouteNow: null), refused);

        var v311 = new InboundChannel(v5: false, receiveMaximum: 10, topicAliasMaximum: 0);
        var id311 = Accept(v311, 1).AckId;
        v311.Routed(id311, deliveries: 1, Now, out _);
        Assert.True(v311.Stored(id311, count: 1, refused: true, Now, out var closed));
        Assert.True(closed.Refused);
        Assert.False(closed.Acknowledge);
    }

    [Fact]
    public void A_message_not_stored_in_time_is_answered_0x80_in_v5_and_not_at_all_in_3_1_1()
    {
        var v5 = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        Accept(v5, 3);
        var expired = v5.RemoveStartedBefore(Now + 1);
        Assert.Equal([3], expired!.Select(e => (int)e.PacketId));
        var timedOut = v5.TimedOut(3, Now);
        Assert.True(timedOut.Acknowledge);
        Assert.Equal(MqttReasonCode.UnspecifiedError, timedOut.Reason);
        Assert.Equal(0, v5.Qos1InFlight);

        var v311 = new InboundChannel(v5: false, receiveMaximum: 10, topicAliasMaximum: 0);
        Accept(v311, 3);
        Assert.False(v311.TimedOut(3, Now).Acknowledge);
        Assert.Equal(0, v311.Qos1InFlight);
    }

    [Fact]
    public void While_the_nodes_are_in_trouble_a_message_waits_behind_earlier_ones_on_its_topic_and_then_goes_in_order()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        var first = Accept(channel, 1).AckId;
        Assert.Equal(InboundPublishAction.Qos1Held, Accept(channel, 2, nodesInTrouble: true).Action);
        Assert.Equal(InboundPublishAction.Qos1Held, Accept(channel, 3).Action); // the topic stays blocked
        Assert.Equal(InboundPublishAction.RouteQos1, Accept(channel, 4, topic: "u", nodesInTrouble: true).Action); // other topics go on
        Assert.Equal(4, channel.Qos1InFlight);

        channel.Routed(first, deliveries: 0, Now, out var done);
        Assert.Equal([2, 3], done.RouteNow!.Select(r => (int)r.Message.Payload.Span[0]));
        Assert.All(done.RouteNow!, r => Assert.True(channel.IsQos1Pending(r.AckId)));
        Assert.Equal(InboundPublishAction.RouteQos1, Accept(channel, 5, nodesInTrouble: false).Action);
    }

    [Fact]
    public void Nodes_in_trouble_hold_nothing_when_no_earlier_message_is_on_its_way()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        Assert.Equal(InboundPublishAction.RouteQos1, Accept(channel, 1, nodesInTrouble: true).Action);
    }

    [Fact]
    public void A_refused_3_1_1_message_leaves_the_held_ones_for_the_client_to_send_again()
    {
        var channel = new InboundChannel(v5: false, receiveMaximum: 10, topicAliasMaximum: 0);
        Accept(channel, 1);
        Accept(channel, 2, nodesInTrouble: true);
        Assert.Null(channel.Complete(1, refused: true, Now).RouteNow);
    }

    [Fact]
    public void Messages_that_waited_since_before_a_node_left_are_routed_again_with_new_ack_ids_in_order()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        var old1 = Accept(channel, 1).AckId;
        var old2 = Accept(channel, 2).AckId;
        Assert.Null(channel.RouteAgain(Now, Now + 10)); // none started before the cutoff
        var again = channel.RouteAgain(Now + 1, Now + 10);
        Assert.Equal([1, 2], again!.Select(r => (int)r.Message.Payload.Span[0]));
        Assert.False(channel.IsQos1Pending(old1));
        Assert.False(channel.IsQos1Pending(old2));
        Assert.All(again!, r => Assert.True(channel.IsQos1Pending(r.AckId)));
        Assert.Equal(2, channel.Qos1InFlight);
    }

    [Fact]
    public void A_QoS_1_message_held_by_a_full_queue_holds_the_publisher_until_it_is_answered()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 0);
        var ackId = Accept(channel, 1).AckId;
        Assert.False(channel.Qos1Held(ackId + 100, Now)); // not one of ours
        Assert.True(channel.Qos1Held(ackId, Now));
        Assert.False(channel.Qos1Held(ackId, Now)); // said again: not new
        Assert.True(channel.AnyHeld);
        channel.Routed(ackId, deliveries: 1, Now, out _);
        channel.Stored(ackId, count: 1, refused: false, Now, out _);
        Assert.False(channel.AnyHeld);
    }
}

/// <summary>
/// The PUBLISH path allocates nothing of the channel's own: decisions are structs, and what a publish allocates is its
/// message and, for QoS 1, its entry in the acknowledgement collector (as before the rules moved here).
/// </summary>
public sealed class InboundChannelAllocationSpecs
{
    private static readonly MqttPublishPacket Qos0 = new() { Topic = "a/b", Payload = new byte[] { 1 } };
    private static readonly MqttPublishPacket Aliased = new() { Topic = "", TopicAlias = 1, Payload = new byte[] { 1 } };

    [Fact]
    public void Resolving_a_topic_by_its_alias_allocates_nothing()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 4);
        channel.ResolveTopic(Qos0 with { TopicAlias = 1 });
        channel.ResolveTopic(Aliased); // warm
        var before = GC.GetAllocatedBytesForCurrentThread();
        var resolved = channel.ResolveTopic(Aliased);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal("a/b", resolved.Topic);
    }

    [Fact]
    public void Accepting_a_QoS_0_publish_allocates_only_its_message()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 4);
        channel.Accept(Qos0, "a/b", "p", 0, 0, false); // warm
        var before = GC.GetAllocatedBytesForCurrentThread();
        var message = new Broker.Routing.MqttApplicationMessage("a/b", Qos0.Payload, MqttQoS.AtMostOnce, false, Qos0.Properties, "p", 0);
        var messageBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        before = GC.GetAllocatedBytesForCurrentThread();
        var decision = channel.Accept(Qos0, "a/b", "p", 0, 0, false);
        Assert.Equal(messageBytes, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(message, decision.Message);
    }

    [Fact]
    public void Completing_a_QoS_1_publish_allocates_nothing()
    {
        var channel = new InboundChannel(v5: true, receiveMaximum: 10, topicAliasMaximum: 4);
        var publish = Qos0 with { QoS = MqttQoS.AtLeastOnce, PacketId = 1 };
        var warm = channel.Accept(publish, "a/b", "p", 0, 0, false).AckId;
        channel.Routed(warm, 1, 0, out _);
        channel.Stored(warm, 1, false, 0, out _);
        var ackId = channel.Accept(publish, "a/b", "p", 0, 0, false).AckId;

        var before = GC.GetAllocatedBytesForCurrentThread();
        channel.Routed(ackId, 1, 0, out _);
        var done = channel.Stored(ackId, 1, false, 0, out var completion);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(done);
        Assert.True(completion.Acknowledge);
    }
}
