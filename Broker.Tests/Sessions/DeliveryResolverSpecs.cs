using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using static Broker.Tests.Sessions.SessionTestData;

namespace Broker.Tests.Sessions;

public sealed class DeliveryResolverSpecs
{
    private const string Me = "me";

    private static Deliver Plain(MqttApplicationMessage m) => new(Me, m, null, null, null, 0);

    [Fact]
    public void Overlapping_subscriptions_should_merge_into_one_message_with_max_QoS_and_all_ids()
    {
        var subs = new Dictionary<string, SubscriptionOptions>
        {
            ["a/+"] = Sub(MqttQoS.AtMostOnce, id: 1),
            ["a/#"] = Sub(MqttQoS.AtLeastOnce, id: 2),
            ["a/b"] = Sub(MqttQoS.AtMostOnce),
            ["x/#"] = Sub(MqttQoS.ExactlyOnce, id: 9),
        };

        var result = DeliveryResolver.Resolve(subs, Me, Plain(Message("a/b", MqttQoS.ExactlyOnce)));

        Assert.NotNull(result);
        Assert.Equal(MqttQoS.AtLeastOnce, result.QoS);
        Assert.Equal(new uint[] { 1, 2 }, result.SubscriptionIdentifiers.Order());
    }

    [Fact]
    public void QoS_should_be_the_lower_of_published_and_granted()
    {
        var subs = new Dictionary<string, SubscriptionOptions> { ["a/#"] = Sub(MqttQoS.ExactlyOnce) };
        var result = DeliveryResolver.Resolve(subs, Me, Plain(Message("a/b", MqttQoS.AtLeastOnce)));
        Assert.Equal(MqttQoS.AtLeastOnce, result!.QoS);
    }

    [Fact]
    public void Non_matching_topic_should_resolve_to_nothing()
    {
        var subs = new Dictionary<string, SubscriptionOptions> { ["a/+"] = Sub(MqttQoS.ExactlyOnce) };
        Assert.Null(DeliveryResolver.Resolve(subs, Me, Plain(Message("a/b/c"))));
        Assert.Null(DeliveryResolver.Resolve(new Dictionary<string, SubscriptionOptions>(), Me, Plain(Message("a"))));
    }

    [Fact]
    public void No_local_should_drop_own_messages_but_other_subscriptions_still_match()
    {
        var noLocalOnly = new Dictionary<string, SubscriptionOptions> { ["a/#"] = Sub(MqttQoS.AtLeastOnce, noLocal: true) };
        Assert.Null(DeliveryResolver.Resolve(noLocalOnly, Me, Plain(Message("a/b", publisher: Me))));
        Assert.NotNull(DeliveryResolver.Resolve(noLocalOnly, Me, Plain(Message("a/b", publisher: "other"))));

        var mixed = new Dictionary<string, SubscriptionOptions>
        {
            ["a/#"] = Sub(MqttQoS.ExactlyOnce, id: 1, noLocal: true),
            ["a/b"] = Sub(MqttQoS.AtMostOnce, id: 2),
        };
        var result = DeliveryResolver.Resolve(mixed, Me, Plain(Message("a/b", MqttQoS.ExactlyOnce, publisher: Me)));
        Assert.Equal(MqttQoS.AtMostOnce, result!.QoS);
        Assert.Equal(new uint[] { 2 }, result.SubscriptionIdentifiers);
    }

    [Fact]
    public void Retain_flag_should_be_kept_only_for_retain_as_published()
    {
        var plain = new Dictionary<string, SubscriptionOptions> { ["a/#"] = Sub(MqttQoS.AtLeastOnce) };
        Assert.False(DeliveryResolver.Resolve(plain, Me, Plain(Message("a/b", retain: true)))!.Retain);

        var rap = new Dictionary<string, SubscriptionOptions> { ["a/#"] = Sub(MqttQoS.AtLeastOnce, retainAsPublished: true) };
        Assert.True(DeliveryResolver.Resolve(rap, Me, Plain(Message("a/b", retain: true)))!.Retain);
        Assert.False(DeliveryResolver.Resolve(rap, Me, Plain(Message("a/b", retain: false)))!.Retain);
    }

    [Fact]
    public void Shared_delivery_should_use_only_the_shared_subscription()
    {
        var subs = new Dictionary<string, SubscriptionOptions>
        {
            ["$share/g/a/#"] = Sub(MqttQoS.AtLeastOnce, id: 5),
            ["a/b"] = Sub(MqttQoS.ExactlyOnce, id: 6),
        };
        var deliver = new Deliver(Me, Message("a/b", MqttQoS.ExactlyOnce), "$share/g/a/#", null, null, 0);

        var result = DeliveryResolver.Resolve(subs, Me, deliver);

        Assert.Equal(MqttQoS.AtLeastOnce, result!.QoS);
        Assert.Equal(new uint[] { 5 }, result.SubscriptionIdentifiers);
    }

    [Fact]
    public void Plain_delivery_should_ignore_shared_subscriptions()
    {
        var subs = new Dictionary<string, SubscriptionOptions> { ["$share/g/a/#"] = Sub(MqttQoS.AtLeastOnce) };
        Assert.Null(DeliveryResolver.Resolve(subs, Me, Plain(Message("a/b"))));
    }

    [Fact]
    public void Shared_delivery_after_unsubscribe_should_be_dropped()
    {
        var deliver = new Deliver(Me, Message("a/b"), "$share/g/a/#", null, null, 0);
        Assert.Null(DeliveryResolver.Resolve(new Dictionary<string, SubscriptionOptions>(), Me, deliver));
    }

    [Fact]
    public void Shared_delivery_should_respect_no_local()
    {
        var subs = new Dictionary<string, SubscriptionOptions> { ["$share/g/a/#"] = Sub(MqttQoS.AtLeastOnce, noLocal: true) };
        var own = new Deliver(Me, Message("a/b", publisher: Me), "$share/g/a/#", null, null, 0);
        Assert.Null(DeliveryResolver.Resolve(subs, Me, own));
    }

    [Fact]
    public void Retained_for_filter_should_keep_retain_and_use_that_filter_only()
    {
        var subs = new Dictionary<string, SubscriptionOptions>
        {
            ["a/+"] = Sub(MqttQoS.AtMostOnce, id: 3),
            ["a/#"] = Sub(MqttQoS.ExactlyOnce, id: 4),
        };
        var deliver = new Deliver(Me, Message("a/b", MqttQoS.ExactlyOnce, retain: true), null, "a/+", null, 0);

        var result = DeliveryResolver.Resolve(subs, Me, deliver);

        Assert.True(result!.Retain);
        Assert.Equal(MqttQoS.AtMostOnce, result.QoS);
        Assert.Equal(new uint[] { 3 }, result.SubscriptionIdentifiers);
        Assert.Null(DeliveryResolver.Resolve(subs, Me, deliver with { RetainedForFilter = "gone/#" }));
    }
}
