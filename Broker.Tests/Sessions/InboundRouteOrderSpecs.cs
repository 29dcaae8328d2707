using Broker.Protocol;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;

namespace Broker.Tests.Sessions;

/// <summary>
/// A persistent session's inbound QoS 2 order while messages are routed again: what it accepts meanwhile waits, and
/// goes in the order it came once every message routed again is stored everywhere or given up ([MQTT-4.6.0-6]).
/// OrderAfterLostRoutingSpecs shows the same on a cluster whose node fails.
/// </summary>
public sealed class InboundRouteOrderSpecs
{
    private static readonly Broker.Routing.MqttApplicationMessage M = Message("t", MqttQoS.ExactlyOnce);

    private static bool Hold(InboundRouteOrder<InboundQos2Pending> order, InboundQos2Pending pending) => order.TryHold(pending, pending.Message.Topic);

    private static InboundQos2Pending Pending(ushort id, long seq, string topic = "t") =>
        new(id, 7, seq, topic == "t" ? M : Message(topic, MqttQoS.ExactlyOnce));

    [Fact]
    public void Nothing_routed_again_nothing_waits()
    {
        var order = new InboundRouteOrder<InboundQos2Pending>();
        Assert.False(Hold(order, Pending(1, 1)));
        Assert.Equal(0, order.HeldCount);
        Assert.Null(order.Done(1));
    }

    [Fact]
    public void Messages_accepted_while_one_is_routed_again_wait_for_it_and_then_go_in_the_order_they_came()
    {
        var order = new InboundRouteOrder<InboundQos2Pending>();
        order.Block(41, "t");
        Assert.True(order.Blocked);
        Assert.True(Hold(order, Pending(42, 42)));
        Assert.True(Hold(order, Pending(43, 43)));

        var release = order.Done(41);
        Assert.Equal([42, 43], release!.Select(p => (int)p.PacketId));
        Assert.False(order.Blocked);
        Assert.False(Hold(order, Pending(44, 44))); // routed at once again
    }

    [Fact]
    public void Held_messages_wait_for_every_message_routed_again()
    {
        var order = new InboundRouteOrder<InboundQos2Pending>();
        order.Block(40, "t");
        order.Block(41, "t");
        Assert.True(Hold(order, Pending(42, 42)));

        Assert.Null(order.Done(41)); // 40 still on its way
        Assert.Null(order.Done(99)); // not blocking: changes nothing
        Assert.Equal(1, order.HeldCount);
        Assert.Equal([42], order.Done(40)!.Select(p => (int)p.PacketId));
    }

    [Fact]
    public void A_message_given_up_on_in_time_keeps_blocking_until_it_is_done()
    {
        // A 3.1.1 client is disconnected when its message cannot be stored in time, and the message stays pending:
        // the session routes it again when the client comes back, so it blocks until then.
        var order = new InboundRouteOrder<InboundQos2Pending>();
        order.Block(41, "t");
        Assert.True(Hold(order, Pending(42, 42)));
        Assert.Contains((ushort)41, order.Blocking);
        order.Block(41, "t"); // routed again once more on the client's return
        Assert.Equal([42], order.Done(41)!.Select(p => (int)p.PacketId));
    }

    [Fact]
    public void Only_the_topic_of_a_blocking_message_waits()
    {
        var order = new InboundRouteOrder<InboundQos2Pending>();
        order.Block(41, "t");
        order.Block(50, "u");
        Assert.False(Hold(order, Pending(42, 42, "v"))); // another topic goes on
        Assert.True(Hold(order, Pending(43, 43)));
        Assert.True(Hold(order, Pending(44, 44, "u")));
        Assert.True(Hold(order, Pending(45, 45)));

        Assert.Equal([43, 45], order.Done(41)!.Select(p => (int)p.PacketId)); // t is free, u still waits for 50
        Assert.Equal([44], order.Done(50)!.Select(p => (int)p.PacketId));
    }

    [Fact]
    public void Clear_forgets_what_blocks_and_what_waits()
    {
        var order = new InboundRouteOrder<InboundQos2Pending>();
        order.Block(41, "t");
        Hold(order, Pending(42, 42));
        order.Clear();
        Assert.False(order.Blocked);
        Assert.Equal(0, order.HeldCount);
        Assert.False(Hold(order, Pending(43, 43)));
    }
}
