using Broker.Protocol;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

public sealed class TopicAliasesSpecs
{
    [Fact]
    public void A_publish_with_topic_and_alias_should_set_the_alias_and_a_later_empty_topic_should_use_it()
    {
        var aliases = new TopicAliases(inboundMaximum: 10, outboundMaximum: 0);
        Assert.Equal("a/b", aliases.Resolve(3, "a/b", v5: true, out _, out _));
        Assert.Equal("a/b", aliases.Resolve(3, "", v5: true, out _, out _));
        Assert.Equal("c", aliases.Resolve(3, "c", v5: true, out _, out _)); // set again: replaced
        Assert.Equal("c", aliases.Resolve(3, "", v5: true, out _, out _));
    }

    [Theory]
    [InlineData(11, true, MqttReasonCode.TopicAliasInvalid)] // above the server's maximum: 0x94
    [InlineData(1, false, MqttReasonCode.TopicAliasInvalid)] // 3.1.1 has no aliases
    [InlineData(2, true, MqttReasonCode.ProtocolError)] // an empty topic with an alias never set
    public void A_broken_alias_should_be_a_protocol_violation(ushort alias, bool v5, MqttReasonCode expected)
    {
        var aliases = new TopicAliases(inboundMaximum: 10, outboundMaximum: 0);
        Assert.Null(aliases.Resolve(alias, "", v5, out var violation, out var why));
        Assert.Equal(expected, violation);
        Assert.Contains(alias.ToString(System.Globalization.CultureInfo.InvariantCulture), why);
    }

    [Fact]
    public void Outbound_aliases_should_be_taught_once_then_used_and_stop_at_the_client_s_maximum()
    {
        var aliases = new TopicAliases(inboundMaximum: 0, outboundMaximum: 2);
        Assert.Equal((ushort)1, aliases.OutboundAlias("t1", out var known)); // to be taught: topic and alias
        Assert.False(known);
        Assert.Equal((ushort)1, aliases.OutboundAlias("t1", out _)); // not taken until the packet is sent
        aliases.RememberOutbound("t1", 1);
        Assert.Equal((ushort)1, aliases.OutboundAlias("t1", out known)); // used: the topic left out
        Assert.True(known);
        Assert.Equal((ushort)2, aliases.OutboundAlias("t2", out known));
        aliases.RememberOutbound("t2", 2);
        Assert.Equal((ushort)0, aliases.OutboundAlias("t3", out known)); // every alias taken: plain
        Assert.False(known);
        Assert.Equal((ushort)0, new TopicAliases(10, 0).OutboundAlias("x", out _)); // the client allows none
    }
}
