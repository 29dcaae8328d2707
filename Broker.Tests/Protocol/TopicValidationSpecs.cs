using Broker.Protocol;
using Xunit;

namespace Broker.Tests.Protocol;

/// <summary>Topic name/filter rules and the reference matcher, from MQTT 3.1.1 and 5.0 sections 4.7 and 4.8.2.</summary>
public sealed class TopicValidationSpecs
{
    // ------------------------------------------------------------------ topic names

    [Theory]
    [InlineData("sport/tennis/player1")]
    [InlineData("/finance")]
    [InlineData("/")]
    [InlineData("sport/")]
    [InlineData("$SYS/monitor/Clients")]
    [InlineData("ACCOUNTS")]
    [InlineData("a b/ü/日本")]
    public void Topic_name_without_wildcards_is_valid(string topic) =>
        Assert.Equal(TopicValidation.Valid, MqttTopic.ValidateTopicName(topic));

    [Fact]
    public void Empty_topic_name_is_invalid_MQTT_4_7_3_1() =>
        Assert.Equal(TopicValidation.Empty, MqttTopic.ValidateTopicName(""));

    [Fact]
    public void Topic_name_with_null_character_is_invalid_MQTT_4_7_3_2() =>
        Assert.Equal(TopicValidation.ContainsNull, MqttTopic.ValidateTopicName("a\0b"));

    [Theory]
    [InlineData("sport/+")]
    [InlineData("sport/#")]
    [InlineData("#")]
    [InlineData("spo+rt")]
    public void Topic_name_with_a_wildcard_is_invalid_MQTT_4_7_1_1(string topic)
    {
        Assert.Equal(TopicValidation.WildcardInName, MqttTopic.ValidateTopicName(topic));
        Assert.False(MqttTopic.IsValidTopicName(topic));
    }

    [Fact]
    public void Topic_of_65535_UTF8_bytes_is_valid_and_one_more_is_too_long_MQTT_4_7_3_3()
    {
        Assert.Equal(TopicValidation.Valid, MqttTopic.ValidateTopicName(new string('a', 65_535)));
        Assert.Equal(TopicValidation.TooLong, MqttTopic.ValidateTopicName(new string('a', 65_536)));
        // 'é' is two UTF-8 bytes: 32,768 of them are 65,536 bytes although only 32,768 chars.
        Assert.Equal(TopicValidation.TooLong, MqttTopic.ValidateTopicName(new string('é', 32_768)));
        Assert.Equal(TopicValidation.TooLong, MqttTopic.ValidateTopicFilter(new string('é', 32_768)));
    }

    // ------------------------------------------------------------------ topic filters

    [Theory]
    [InlineData("sport/tennis/player1/#")]
    [InlineData("sport/#")]
    [InlineData("#")]
    [InlineData("+")]
    [InlineData("+/tennis/#")]
    [InlineData("sport/+/player1")]
    [InlineData("+/+")]
    [InlineData("/+")]
    [InlineData("/")]
    [InlineData("$SYS/#")]
    [InlineData("sport/tennis/player1")]
    [InlineData("$share")]
    public void Well_formed_filter_is_valid_MQTT_4_7_1(string filter) =>
        Assert.Equal(TopicValidation.Valid, MqttTopic.ValidateTopicFilter(filter));

    [Theory]
    [InlineData("sport/tennis#")]
    [InlineData("sport/tennis/#/ranking")]
    [InlineData("#/")]
    [InlineData("##")]
    [InlineData("sport/#+")]
    public void Multi_level_wildcard_not_alone_as_last_level_is_invalid_MQTT_4_7_1_2(string filter) =>
        Assert.Equal(TopicValidation.MisplacedMultiLevelWildcard, MqttTopic.ValidateTopicFilter(filter));

    [Theory]
    [InlineData("sport+")]
    [InlineData("sport/+tennis")]
    [InlineData("++")]
    [InlineData("+a/b")]
    public void Single_level_wildcard_not_a_whole_level_is_invalid_MQTT_4_7_1_3(string filter) =>
        Assert.Equal(TopicValidation.MisplacedSingleLevelWildcard, MqttTopic.ValidateTopicFilter(filter));

    [Fact]
    public void Empty_filter_is_invalid_MQTT_4_7_3_1() =>
        Assert.Equal(TopicValidation.Empty, MqttTopic.ValidateTopicFilter(""));

    [Fact]
    public void Filter_with_null_character_is_invalid_MQTT_4_7_3_2() =>
        Assert.Equal(TopicValidation.ContainsNull, MqttTopic.ValidateTopicFilter("a/\0/#"));

    // ------------------------------------------------------------------ shared subscriptions

    [Theory]
    [InlineData("$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+")]
    [InlineData("$share/consumer2/sport/tennis/+", "consumer2", "sport/tennis/+")]
    [InlineData("$share/g/#", "g", "#")]
    [InlineData("$share/g//", "g", "/")]
    [InlineData("$share/g/$SYS/x", "g", "$SYS/x")]
    public void Shared_filter_splits_into_share_name_and_filter_MQTT_4_8_2(string filter, string group, string inner)
    {
        Assert.Equal(TopicValidation.Valid, MqttTopic.ValidateTopicFilter(filter));
        Assert.True(MqttTopic.TryParseShared(filter, out var g, out var f));
        Assert.Equal(group, g);
        Assert.Equal(inner, f);
    }

    [Theory]
    [InlineData("$share/group")]
    [InlineData("$share/group/")]
    [InlineData("$share//x")]
    [InlineData("$share/")]
    [InlineData("$share/a+/x")]
    [InlineData("$share/a#/x")]
    [InlineData("$share/+/x")]
    public void Shared_filter_needs_a_plain_share_name_and_a_filter_MQTT_4_8_2_1_and_4_8_2_2(string filter)
    {
        Assert.Equal(TopicValidation.InvalidSharedSubscription, MqttTopic.ValidateTopicFilter(filter));
        Assert.False(MqttTopic.TryParseShared(filter, out _, out _));
    }

    [Theory]
    [InlineData("$share/g/sport+", TopicValidation.MisplacedSingleLevelWildcard)]
    [InlineData("$share/g/#/x", TopicValidation.MisplacedMultiLevelWildcard)]
    public void Shared_filter_inner_filter_follows_the_wildcard_rules(string filter, TopicValidation expected) =>
        Assert.Equal(expected, MqttTopic.ValidateTopicFilter(filter));

    [Fact]
    public void Non_shared_filter_does_not_parse_as_shared()
    {
        Assert.False(MqttTopic.TryParseShared("sport/#", out var g, out var f));
        Assert.Equal("", g);
        Assert.Equal("", f);
        Assert.False(MqttTopic.TryParseShared("$shared/g/x", out _, out _));
    }

    [Theory]
    [InlineData("sport/+", true)]
    [InlineData("#", true)]
    [InlineData("sport/tennis", false)]
    [InlineData("$share/g/a", false)]
    public void HasWildcards_reports_plus_or_hash(string filter, bool expected) =>
        Assert.Equal(expected, MqttTopic.HasWildcards(filter));
}
