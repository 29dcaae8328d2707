using Broker.Node.Hosting;

namespace Broker.Tests.Node;

/// <summary>Categories of Akka's log events and the membership changes that stay visible by default.</summary>
public sealed class AkkaLogCategorySpecs
{
    [Fact]
    public void A_class_source_is_its_type()
    {
        Assert.Equal("Akka.Cluster.Sharding.ShardRegion", AkkaLogCategory.Of(typeof(Akka.Cluster.Sharding.ShardRegion), "akka.tcp://broker@h:1/system/sharding/topic"));
    }

    [Theory]
    [InlineData("Cluster (akka://broker)", "Akka.Cluster")]
    [InlineData("remoting (akka://broker)", "Akka.Remote.Remoting")]
    [InlineData("remoting-terminator", "Akka.Remote.RemotingTerminator")]
    [InlineData("SomethingElse (akka://broker)", "Akka.SomethingElse")]
    [InlineData("akka://broker/user/x-y", "Akka.akka.broker.user.x.y")]
    [InlineData("", "Akka")]
    public void A_string_source_is_named_after_the_source_not_a_placeholder(string source, string expected)
    {
        Assert.Equal(expected, AkkaLogCategory.Of(typeof(Akka.Event.DummyClassForStringSources), source));
        Assert.Equal(expected, AkkaLogCategory.Of(null, source));
    }

    [Theory]
    [InlineData("Cluster Node [akka.tcp://broker@127.0.0.1:4053] - Leader is moving node [akka.tcp://broker@127.0.0.1:4054] to [Up]", true)]
    [InlineData("Cluster Node [akka.tcp://broker@127.0.0.1:4053] - Node [akka.tcp://broker@127.0.0.1:4053] is JOINING itself", true)]
    [InlineData("Cluster Node [akka.tcp://broker@127.0.0.1:4053] - Marking node(s) as UNREACHABLE [Member(...)]", true)]
    [InlineData("Cluster Node [akka.tcp://broker@127.0.0.1:4053] - Leader is removing unreachable node [akka.tcp://broker@127.0.0.1:4055]", true)]
    [InlineData("Cluster Node [akka.tcp://broker@127.0.0.1:4053] - Started up successfully", false)]
    [InlineData("Cluster Node [akka.tcp://broker@127.0.0.1:4053] - No seed-nodes configured, manual cluster join required", false)]
    public void Membership_changes_are_told_from_chatter(string text, bool membership)
    {
        Assert.Equal(membership, AkkaLogCategory.IsMembershipChange("Akka.Cluster", text));
        Assert.False(AkkaLogCategory.IsMembershipChange("Akka.Remote.Remoting", text)); // only Akka.Cluster's own
    }
}
