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
        Assert.Equal(("t1", (ushort)1), aliases.Outbound("t1")); // taught: topic and alias
        Assert.Equal(("", (ushort)1), aliases.Outbound("t1")); // used: the topic left out
        Assert.Equal(("t2", (ushort)2), aliases.Outbound("t2"));
        Assert.Equal(("t3", (ushort)0), aliases.Outbound("t3")); // every alias taken: plain
        Assert.Equal(("x", (ushort)0), new TopicAliases(10, 0).Outbound("x")); // the client allows none
    }
}
