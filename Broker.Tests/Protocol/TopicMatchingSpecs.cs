using Broker.Protocol;
using Xunit;

namespace Broker.Tests.Protocol;

/// <summary>
/// The reference matcher against every example of MQTT 3.1.1 / 5.0 section 4.7. The same table drives the trie and
/// name-index specs (<see cref="Examples"/>), so all three structures agree with the spec text.
/// </summary>
public sealed class TopicMatchingSpecs
{
    /// <summary>(filter, topic, matches, spec reference).</summary>
    public static TheoryData<string, string, bool, string> Examples => new()
    {
        // 4.7.1.2 Multi-level wildcard
        { "sport/tennis/player1/#", "sport/tennis/player1", true, "MQTT-4.7.1-2 parent level" },
        { "sport/tennis/player1/#", "sport/tennis/player1/ranking", true, "MQTT-4.7.1-2" },
        { "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true, "MQTT-4.7.1-2" },
        { "sport/tennis/player1/#", "sport/tennis/player2", false, "MQTT-4.7.1-2" },
        { "sport/tennis/player1/#", "sport/tennis", false, "MQTT-4.7.1-2" },
        { "sport/#", "sport", true, "MQTT-4.7.1-2 parent level" },
        { "sport/#", "sport/", true, "MQTT-4.7.1-2" },
        { "sport/#", "sports", false, "MQTT-4.7.1-2" },
        { "#", "sport/tennis/player1", true, "MQTT-4.7.1-2 every topic" },
        { "#", "/", true, "MQTT-4.7.1-2" },
        { "#", "a", true, "MQTT-4.7.1-2" },
        // 4.7.1.3 Single-level wildcard
        { "sport/tennis/+", "sport/tennis/player1", true, "MQTT-4.7.1-3" },
        { "sport/tennis/+", "sport/tennis/player2", true, "MQTT-4.7.1-3" },
        { "sport/tennis/+", "sport/tennis/player1/ranking", false, "MQTT-4.7.1-3 one level only" },
        { "sport/+", "sport", false, "MQTT-4.7.1-3" },
        { "sport/+", "sport/", true, "MQTT-4.7.1-3 empty level" },
        { "+", "sport", true, "MQTT-4.7.1-3" },
        { "+/+", "/finance", true, "MQTT-4.7.1-3" },
        { "/+", "/finance", true, "MQTT-4.7.1-3" },
        { "+", "/finance", false, "MQTT-4.7.1-3" },
        { "+/tennis/#", "sport/tennis/player1", true, "MQTT-4.7.1-3 combined" },
        { "+/tennis/#", "sport/tennis", true, "MQTT-4.7.1-3 combined" },
        { "sport/+/player1", "sport/tennis/player1", true, "MQTT-4.7.1-3" },
        { "+/#", "sport", true, "MQTT-4.7.1-3 combined" },
        { "+/+", "a", false, "MQTT-4.7.1-3" },
        // 4.7.2 Topics beginning with $
        { "#", "$SYS/x", false, "MQTT-4.7.2-1" },
        { "#", "$SYS", false, "MQTT-4.7.2-1" },
        { "+", "$SYS", false, "MQTT-4.7.2-1" },
        { "+/monitor/Clients", "$SYS/monitor/Clients", false, "MQTT-4.7.2-1" },
        { "$SYS/#", "$SYS/monitor/Clients", true, "MQTT-4.7.2-1" },
        { "$SYS/#", "$SYS", true, "MQTT-4.7.2-1" },
        { "$SYS/monitor/+", "$SYS/monitor/Clients", true, "MQTT-4.7.2-1" },
        { "a/+", "a/$b", true, "MQTT-4.7.2-1 only the first level" },
        { "a/#", "a/$b/c", true, "MQTT-4.7.2-1 only the first level" },
        // 4.7.3 Topic semantic and usage: case sensitive, no normalisation
        { "ACCOUNTS", "Accounts", false, "MQTT-4.7.3 case sensitive" },
        { "sport/tennis", "sport/tennis/", false, "MQTT-4.7.3 trailing separator is a level" },
        { "/finance", "finance", false, "MQTT-4.7.3 leading separator is a level" },
        { "Accounts payable", "Accounts payable", true, "MQTT-4.7.3 spaces" },
        { "/", "/", true, "MQTT-4.7.3" },
        { "//", "//", true, "MQTT-4.7.3" },
        { "+/+/+", "//", true, "MQTT-4.7.3 empty levels" },
        { "a/b", "a/b/c", false, "exact" },
        { "a/b/c", "a/b", false, "exact" },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public void Reference_matcher_follows_the_spec_examples(string filter, string topic, bool expected, string spec)
    {
        Assert.True(expected == MqttTopic.Matches(filter, topic), $"[{spec}] '{filter}' vs '{topic}' should be {expected}");
    }

    [Fact]
    public void Filter_starting_with_a_wildcard_does_not_match_a_dollar_topic_MQTT_4_7_2_1()
    {
        Assert.False(MqttTopic.Matches("#", "$SYS/broker/uptime"));
        Assert.False(MqttTopic.Matches("+/broker/uptime", "$SYS/broker/uptime"));
        Assert.True(MqttTopic.Matches("$SYS/#", "$SYS/broker/uptime"));
    }

    [Fact]
    public void Multi_level_wildcard_matches_the_parent_level_MQTT_4_7_1_2() =>
        Assert.True(MqttTopic.Matches("sport/#", "sport"));

    [Fact]
    public void Single_level_wildcard_matches_an_empty_level_but_not_a_missing_one_MQTT_4_7_1_3()
    {
        Assert.True(MqttTopic.Matches("sport/+", "sport/"));
        Assert.False(MqttTopic.Matches("sport/+", "sport"));
    }
}
