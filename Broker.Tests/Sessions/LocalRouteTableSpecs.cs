using Broker.Routing;
using Broker.Sessions;
using Outcome = Broker.Sessions.LocalRouteTable<string>.AddOutcome;

namespace Broker.Tests.Sessions;

public sealed class LocalRouteTableSpecs
{
    private const long Linger = 60_000;
    private const long Retry = 5_000;

    [Fact]
    public void The_first_subscriber_should_ask_for_the_route_once_and_all_waiters_are_answered_when_it_is_stored()
    {
        var table = new LocalRouteTable<string>(Linger, Retry);
        Assert.Equal(Outcome.Ensure, table.Add("t", "a", 1, "wa", 100, out var ensureId));
        Assert.Equal(Outcome.Waiting, table.Add("t", "b", 2, "wb", 110, out _));
        Assert.Equal(["wa", "wb"], table.Stored(ensureId)!);
        Assert.Null(table.Stored(ensureId)); // a second answer (an ensure asked again) finds nobody waiting
        Assert.Equal(Outcome.Routed, table.Add("t", "c", 3, "wc", 120, out _));
    }

    [Fact]
    public void A_route_should_stay_for_the_linger_after_its_last_subscriber_left_so_a_returning_one_writes_nothing()
    {
        var table = new LocalRouteTable<string>(Linger, Retry);
        table.Add("t", "a", 1, "w", 0, out var ensureId);
        table.Stored(ensureId);
        table.RemoveSession("a", 1, 1_000);

        var drop = new List<string>();
        var again = new List<(string Topic, long EnsureId)>();
        table.Sweep(1_000 + Linger - 1, drop, again);
        Assert.Empty(drop);
        Assert.Equal(Outcome.Routed, table.Add("t", "a", 2, "w2", 30_000, out _)); // the device came back on a new connection

        table.RemoveSession("a", 2, 40_000);
        table.Sweep(40_000 + Linger, drop, again);
        Assert.Equal(["t"], drop);
        Assert.Equal(0, table.TopicCount);
        Assert.Equal(Outcome.Ensure, table.Add("t", "a", 3, "w3", 200_000, out _)); // given up: asked for again
    }

    [Fact]
    public void An_unanswered_route_should_be_asked_for_again_after_the_retry_interval()
    {
        var table = new LocalRouteTable<string>(Linger, Retry);
        table.Add("t", "a", 1, "w", 1_000, out _);
        var drop = new List<string>();
        var again = new List<(string Topic, long EnsureId)>();
        table.Sweep(1_000 + Retry - 1, drop, again);
        Assert.Empty(again);
        table.Sweep(1_000 + Retry, drop, again);
        Assert.Equal(["t"], again.Select(a => a.Topic));
        Assert.Empty(drop);
    }

    [Fact]
    public void A_subscriber_leaving_before_the_route_is_stored_should_leave_it_to_linger_once_stored()
    {
        var table = new LocalRouteTable<string>(Linger, Retry);
        table.Add("t", "a", 1, "w", 0, out var ensureId);
        table.Remove("t", "a", 1, 10);
        Assert.Equal(["w"], table.Stored(ensureId)!);

        var drop = new List<string>();
        var again = new List<(string Topic, long EnsureId)>();
        table.Sweep(100, drop, again); // starts the linger
        table.Sweep(100 + Linger - 1, drop, again);
        Assert.Empty(drop);
        table.Sweep(100 + Linger, drop, again);
        Assert.Equal(["t"], drop);
    }

    [Fact]
    public void Expansion_should_add_each_local_subscriber_once_beside_those_named_for_a_non_shared_filter()
    {
        var table = new LocalRouteTable<string>(Linger, Retry);
        table.Add("t", "a", 1, "w", 0, out var ensureId);
        table.Add("t", "b", 2, "w", 0, out _);
        table.Add("t", "c", 3, "w", 0, out _);
        table.Stored(ensureId);

        // b matched a wildcard filter too (named by the topic entity); c is named for a shared subscription, which is a
        // subscription of its own and gets its own copy.
        var recipients = new List<NodeRecipient> { new("b", 2, null), new("c", 3, "$share/g/t") };
        var added = table.AddSubscribers("t", recipients, recipients.Count);
        Assert.Equal(2, added);
        Assert.Equal(new NodeRecipient("b", 2, null), recipients[0]);
        Assert.Equal(new NodeRecipient("c", 3, "$share/g/t"), recipients[1]);
        Assert.Equal(
            new HashSet<NodeRecipient> { new("a", 1, null), new("c", 3, null) },
            recipients.Skip(2).ToHashSet());
        Assert.Equal(-1, table.AddSubscribers("other", recipients, recipients.Count));
    }

    [Fact]
    public void A_session_that_ends_should_leave_every_topic_it_subscribed_to()
    {
        var table = new LocalRouteTable<string>(Linger, Retry);
        table.Add("t1", "a", 1, "w", 0, out _);
        table.Add("t2", "a", 1, "w", 0, out _);
        table.Add("t2", "a", 2, "w", 0, out _); // the same client id's next connection, taking over
        table.RemoveSession("a", 1, 10);
        Assert.False(table.Subscribes("t1", "a", 1));
        Assert.False(table.Subscribes("t2", "a", 1));
        Assert.True(table.Subscribes("t2", "a", 2));
    }
}
