using System.Collections.Immutable;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Tests.Channel;

/// <summary>
/// The rules of what a connected client sends, on <see cref="InboundChannel"/> directly: topic aliases and topic names,
/// QoS 1 resends, the v5 Receive Maximum, QoS 2 hand-overs, releases and requests handed over again after a re-attach,
/// and the gate a SUBSCRIBE closes.
/// </summary>
public sealed class InboundChannelSpecs
{
    private const long Now = 1_000_000;

    private static InboundChannel V5(int receiveMaximum = 10, int topicAliasMaximum = 4) => new(v5: true, receiveMaximum, topicAliasMaximum);

    private static InboundChannel V311() => new(v5: false, receiveMaximum: 10, topicAliasMaximum: 4);

    private static MqttPublishPacket Publish(string topic, MqttQoS qos = MqttQoS.AtMostOnce, ushort id = 0, ushort alias = 0) =>
        new() { Topic = topic, QoS = qos, PacketId = id, TopicAlias = alias, Payload = new byte[] { 1, 2 } };

    private static InboundPublishDecision Accept(InboundChannel channel, MqttPublishPacket publish, bool nodesInTrouble = false) =>
        channel.Accept(publish, channel.ResolveTopic(publish).Topic!, "publisher", Now, Now, nodesInTrouble);

    private static MqttSubscribePacket Subscribe(ushort id, string filter = "a/#", bool noLocal = false) => new()
    {
        PacketId = id,
        Subscriptions = ImmutableArray.Create(new MqttTopicSubscription { TopicFilter = filter, QoS = MqttQoS.AtLeastOnce, NoLocal = noLocal }),
    };

    private static MqttUnsubscribePacket Unsubscribe(ushort id) => new() { PacketId = id, TopicFilters = ImmutableArray.Create("a/#") };

    [Fact]
    public void A_topic_with_an_alias_sets_the_alias_and_a_later_empty_topic_uses_it_MQTT_3_3_2_12()
    {
        var channel = V5();
        Assert.Equal("a/b", channel.ResolveTopic(Publish("a/b", alias: 2)).Topic);
        var resolved = channel.ResolveTopic(Publish("", alias: 2));
        Assert.False(resolved.IsViolation);
        Assert.Equal("a/b", resolved.Topic);
    }

    [Fact]
    public void An_alias_above_the_server_s_Topic_Alias_Maximum_is_Topic_Alias_invalid_MQTT_3_3_2_9()
    {
        var resolved = V5(topicAliasMaximum: 4).ResolveTopic(Publish("a/b", alias: 5));
        Assert.True(resolved.IsViolation);
        Assert.Equal(MqttReasonCode.TopicAliasInvalid, resolved.Violation);
        Assert.Contains("5", resolved.Why);
    }

    [Fact]
    public void An_empty_topic_with_an_alias_never_set_is_a_protocol_error()
    {
        var resolved = V5().ResolveTopic(Publish("", alias: 3));
        Assert.True(resolved.IsViolation);
        Assert.Equal(MqttReasonCode.ProtocolError, resolved.Violation);
        Assert.Contains("unknown topic alias 3", resolved.Why);
    }

    [Fact]
    public void A_3_1_1_client_has_no_aliases_at_all()
    {
        Assert.Equal(MqttReasonCode.TopicAliasInvalid, V311().ResolveTopic(Publish("a/b", alias: 1)).Violation);
    }

    [Fact]
    public void A_publish_with_neither_topic_nor_alias_has_an_invalid_topic_name()
    {
        // Alias 0 itself [MQTT-3.3.2-8] never gets here: the decoder refuses a Topic Alias property of 0, and a packet's 0 means "none".
        var resolved = V5().ResolveTopic(Publish(""));
        Assert.Equal(MqttReasonCode.TopicNameInvalid, resolved.Violation);
    }

    [Theory]
    [InlineData("a/+")]
    [InlineData("a/#")]
    public void A_topic_name_with_a_wildcard_is_Topic_Name_invalid_MQTT_3_3_2_2(string topic)
    {
        var resolved = V5().ResolveTopic(Publish(topic));
        Assert.True(resolved.IsViolation);
        Assert.Equal(MqttReasonCode.TopicNameInvalid, resolved.Violation);
        Assert.Equal($"invalid topic name '{topic}'", resolved.Why);
    }

    [Fact]
    public void A_topic_set_through_an_alias_is_judged_like_any_other_topic()
    {
        var channel = V5();
        Assert.Equal(MqttReasonCode.TopicNameInvalid, channel.ResolveTopic(Publish("a/#", alias: 1)).Violation);
    }

    [Fact]
    public void A_QoS_0_publish_is_routed_with_the_publisher_s_id_and_its_expiry_made_absolute()
    {
        var channel = V5();
        var publish = Publish("t") with { Properties = new MqttMessageProperties { MessageExpiryInterval = 30 } };
        var decision = channel.Accept(publish, "t", "publisher", nowUnixMs: 5_000, Now, nodesInTrouble: false);
        Assert.Equal(InboundPublishAction.RouteQos0, decision.Action);
        Assert.Equal("publisher", decision.Message!.PublisherClientId);
        Assert.Equal(35_000, decision.Message.ExpiresAtUnixMs);
        Assert.Equal(0, channel.Qos1InFlight);
    }

    [Fact]
    public void A_QoS_1_resend_of_an_id_still_in_flight_is_not_routed_twice()
    {
        var channel = V5();
        var first = Accept(channel, Publish("t", MqttQoS.AtLeastOnce, id: 7));
        Assert.Equal(InboundPublishAction.RouteQos1, first.Action);
        Assert.NotEqual(0, first.AckId);

        Assert.Equal(InboundPublishAction.Qos1AlreadyInFlight, Accept(channel, Publish("t", MqttQoS.AtLeastOnce, id: 7)).Action);
        Assert.Equal(1, channel.Qos1InFlight);
        Assert.Equal(1, channel.Qos1AwaitingRouting);

        // Once stored everywhere it is acknowledged, and the same id is a new message again.
        Assert.True(channel.Routed(first.AckId, deliveries: 0, Now, out var done));
        Assert.Equal(new Qos1Completion(7, Refused: false, Acknowledge: true, MqttReasonCode.Success, RouteNow: null), done);
        Assert.Equal(InboundPublishAction.RouteQos1, Accept(channel, Publish("t", MqttQoS.AtLeastOnce, id: 7)).Action);
    }

    [Fact]
    public void A_QoS_1_publish_beyond_Receive_Maximum_is_Receive_Maximum_exceeded_MQTT_3_3_4_10()
    {
        var channel = V5(receiveMaximum: 2);
        Assert.Equal(InboundPublishAction.RouteQos1, Accept(channel, Publish("t", MqttQoS.AtLeastOnce, id: 1)).Action);
        Assert.Equal(InboundPublishAction.HandOverQos2, Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 2)).Action);

        var third = Accept(channel, Publish("t", MqttQoS.AtLeastOnce, id: 3));
        Assert.Equal(InboundPublishAction.Violation, third.Action);
        Assert.Equal(MqttReasonCode.ReceiveMaximumExceeded, third.Violation);
    }

    [Fact]
    public void A_QoS_2_publish_beyond_Receive_Maximum_is_refused_and_its_slot_frees_at_PUBCOMP_or_a_refusing_PUBREC()
    {
        var channel = V5(receiveMaximum: 2);
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 1));
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 2));
        Assert.Equal(MqttReasonCode.ReceiveMaximumExceeded, Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 3)).Violation);

        var again = V5(receiveMaximum: 2);
        Accept(again, Publish("t", MqttQoS.ExactlyOnce, id: 1));
        Accept(again, Publish("t", MqttQoS.ExactlyOnce, id: 2));
        again.HandOverAnswered(1, MqttReasonCode.Success); // PUBREC 0x00: the slot is held until PUBCOMP
        again.HandOverAnswered(2, MqttReasonCode.QuotaExceeded); // PUBREC 0x97 ends the exchange: free
        Assert.Equal(InboundPublishAction.HandOverQos2, Accept(again, Publish("t", MqttQoS.ExactlyOnce, id: 3)).Action);
        again.ReleaseAnswered(1); // PUBCOMP
        Assert.Equal(InboundPublishAction.HandOverQos2, Accept(again, Publish("t", MqttQoS.ExactlyOnce, id: 5)).Action);
        Assert.Equal(MqttReasonCode.ReceiveMaximumExceeded, Accept(again, Publish("t", MqttQoS.ExactlyOnce, id: 6)).Violation); // 3 and 5 hold both
    }

    [Fact]
    public void A_3_1_1_client_has_no_Receive_Maximum()
    {
        var channel = V311();
        for (ushort id = 1; id <= 20; id++)
        {
            Assert.Equal(InboundPublishAction.RouteQos1, Accept(channel, Publish("t", MqttQoS.AtLeastOnce, id)).Action);
        }
    }

    [Fact]
    public void QoS_2_hand_overs_are_handed_over_again_after_a_re_attach_in_arrival_order_even_after_removals()
    {
        var channel = V5();
        foreach (ushort id in new ushort[] { 5, 1, 9, 3 })
        {
            Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id));
        }

        channel.HandOverAnswered(1, MqttReasonCode.Success); // its slot in the dictionary is free now
        channel.HandOverFailed(9, refused: true, out _);
        foreach (ushort id in new ushort[] { 2, 8 })
        {
            Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id)); // may take the freed slots
        }

        var resend = channel.Unanswered();
        Assert.All(resend, u => Assert.Equal(UnansweredKind.Qos2Publish, u.Kind));
        Assert.Equal([5, 3, 2, 8], resend.Select(u => (int)u.PacketId));
        Assert.All(resend, u => Assert.Equal("t", u.Message!.Topic));
    }

    [Fact]
    public void Releases_and_requests_are_handed_over_again_in_order_after_the_QoS_2_publishes()
    {
        var channel = V5();
        var subscribe = Subscribe(20);
        var unsubscribe = Unsubscribe(21);
        channel.Release(12);
        channel.Subscribe(subscribe);
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 30));
        channel.Release(10);
        channel.Release(11);
        channel.Unsubscribe(unsubscribe);
        channel.Release(10); // the client's resend of a PUBREL: handed over once
        channel.ReleaseAnswered(12);
        channel.Release(13);

        var resend = channel.Unanswered();
        Assert.Equal(
            new[]
            {
                (UnansweredKind.Qos2Publish, 30), (UnansweredKind.Release, 10), (UnansweredKind.Release, 11), (UnansweredKind.Release, 13),
                (UnansweredKind.Request, 20), (UnansweredKind.Request, 21),
            },
            resend.Select(u => (u.Kind, (int)u.PacketId)));
        Assert.Same(subscribe, resend[4].Request);
        Assert.Same(unsubscribe, resend[5].Request);

        Assert.True(channel.RequestAnswered(20));
        channel.RequestAnswered(21);
        Assert.Equal([10, 11, 13], channel.Unanswered().Select(u => (int)u.PacketId).Skip(1));
    }

    [Fact]
    public void A_SUBSCRIBE_closes_the_gate_until_every_SUBSCRIBE_is_answered()
    {
        var channel = V5();
        Assert.False(channel.Subscribing);
        channel.Subscribe(Subscribe(1));
        channel.Unsubscribe(Unsubscribe(2));
        channel.Subscribe(Subscribe(3));
        Assert.True(channel.Subscribing);

        Assert.False(channel.RequestAnswered(1)); // 3 is still with the session
        Assert.True(channel.Subscribing);
        Assert.True(channel.RequestAnswered(3)); // the packets that waited may go on
        Assert.False(channel.Subscribing);
        Assert.False(channel.RequestAnswered(2)); // an UNSUBSCRIBE never closed it
    }

    [Fact]
    public void An_UNSUBSCRIBE_alone_does_not_close_the_gate()
    {
        var channel = V5();
        channel.Unsubscribe(Unsubscribe(4));
        Assert.False(channel.Subscribing);
        Assert.False(channel.RequestAnswered(4));
        Assert.Empty(channel.Unanswered());
    }

    [Fact]
    public void No_Local_on_a_shared_subscription_is_a_protocol_error_MQTT_3_8_3_4()
    {
        Assert.Equal(MqttReasonCode.ProtocolError, V5().CheckSubscribe(Subscribe(1, "$share/g/a", noLocal: true)));
        Assert.Null(V5().CheckSubscribe(Subscribe(1, "a/b", noLocal: true)));
        Assert.Null(V5().CheckSubscribe(Subscribe(1, "$share/g/a")));
    }

    [Fact]
    public void A_QoS_2_hand_over_held_by_a_full_queue_holds_until_it_is_answered_and_a_re_attach_forgets_it()
    {
        var channel = V5();
        Assert.False(channel.Qos2Held(4)); // not handed over: nothing to hold
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 4));
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 6));
        Assert.True(channel.Qos2Held(4));
        Assert.False(channel.Qos2Held(4)); // said again: not new
        Assert.True(channel.AnyHeld);
        Assert.True(channel.HandOverAnswered(4, MqttReasonCode.Success));
        Assert.False(channel.AnyHeld);

        Assert.True(channel.Qos2Held(6));
        channel.Unanswered(); // the new session says again what it holds
        Assert.False(channel.AnyHeld);
        channel.HandOverFailed(6, refused: false, out var wasHeld);
        Assert.False(wasHeld);
    }

    [Theory]
    [InlineData(true, MqttReasonCode.QuotaExceeded)]
    [InlineData(false, MqttReasonCode.UnspecifiedError)]
    public void A_QoS_2_publish_not_stored_is_answered_with_a_failing_PUBREC_in_v5_and_frees_its_slot(bool refused, MqttReasonCode expected)
    {
        var channel = V5(receiveMaximum: 1);
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 1));
        Assert.True(channel.Qos2Held(1));
        Assert.Equal(expected, channel.HandOverFailed(1, refused, out var wasHeld));
        Assert.True(wasHeld);
        Assert.Empty(channel.Unanswered()); // not handed over again
        Assert.Equal(InboundPublishAction.HandOverQos2, Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 2)).Action);
    }

    [Fact]
    public void A_3_1_1_client_hears_no_PUBREC_for_a_QoS_2_publish_not_stored()
    {
        var channel = V311();
        Accept(channel, Publish("t", MqttQoS.ExactlyOnce, id: 1));
        Assert.Null(channel.HandOverFailed(1, refused: false, out _));
        Assert.Empty(channel.Unanswered());
    }
}
