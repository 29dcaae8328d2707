using Broker.Routing;

namespace Broker.Tests.Routing;

public sealed class DeliveryPlannerSpecs
{
    private static readonly SubscriberKey[] Group = [new("m1", "g"), new("m2", "g"), new("m3", "g")];

    private static string Member(DeliveryPlanner planner, MessageOrigin? origin = null)
    {
        var targets = new List<DeliveryTarget>();
        planner.Plan("t", [.. Group], [], targets, origin);
        return Assert.Single(targets).ClientId;
    }

    [Fact]
    public void A_shared_group_takes_turns()
    {
        var planner = new DeliveryPlanner();
        Assert.Equal(["m1", "m2", "m3", "m1"], Enumerable.Range(0, 4).Select(_ => Member(planner)));
    }

    [Fact]
    public void A_message_routed_again_under_its_origin_meets_the_same_member_of_the_group()
    {
        var planner = new DeliveryPlanner();
        var origin = new MessageOrigin(-7_777_777_777, 41, 40);
        var first = Member(planner, origin);

        Member(planner);
        Member(planner, origin with { Seq = 42 }); // other messages in between
        Assert.Equal(first, Member(new DeliveryPlanner(), origin with { LowWater = 41 }));
        Assert.Equal(first, Member(planner, origin));
    }

    [Fact]
    public void The_messages_of_one_origin_still_take_turns()
    {
        var planner = new DeliveryPlanner();
        var chosen = Enumerable.Range(1, 6).Select(seq => Member(planner, new MessageOrigin(5, seq, seq))).ToList();
        Assert.Equal(3, chosen.Distinct().Count());
        Assert.Equal(chosen.Take(3), chosen.Skip(3));
    }
}
