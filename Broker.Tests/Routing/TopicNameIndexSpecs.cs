using Broker.Protocol;
using Broker.Routing;
using Broker.Tests.Protocol;
using FsCheck.Xunit;
using Xunit;

namespace Broker.Tests.Routing;

/// <summary>The retained-message name index: spec examples, bookkeeping, pruning, and equivalence to the reference matcher.</summary>
public sealed class TopicNameIndexSpecs
{
    public static TheoryData<string, string, bool, string> Examples => TopicMatchingSpecs.Examples;

    private static List<string> MatchAll(TopicNameIndex index, string filter)
    {
        var results = new List<string>();
        index.Match(filter, results);
        results.Sort(StringComparer.Ordinal);
        return results;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Name_index_follows_the_spec_examples(string filter, string topic, bool expected, string spec)
    {
        var index = new TopicNameIndex();
        index.Add(topic);
        var matches = MatchAll(index, filter);
        Assert.True(expected == (matches.Count == 1), $"[{spec}] '{filter}' vs '{topic}' should be {expected}");
    }

    private static TopicNameIndex Retained(params string[] topics)
    {
        var index = new TopicNameIndex();
        foreach (var t in topics)
            index.Add(t);
        return index;
    }

    [Fact]
    public void Multi_level_wildcard_returns_the_parent_and_the_whole_subtree_MQTT_4_7_1_2()
    {
        var index = Retained("sport", "sport/tennis", "sport/tennis/player1", "sport/", "sports", "news/sport");

        Assert.Equal(new[] { "sport", "sport/", "sport/tennis", "sport/tennis/player1" }, MatchAll(index, "sport/#"));
    }

    [Fact]
    public void Single_level_wildcard_returns_one_level_including_the_empty_one_MQTT_4_7_1_3()
    {
        var index = Retained("sport", "sport/", "sport/tennis", "sport/tennis/player1", "/finance", "finance");

        Assert.Equal(new[] { "sport/", "sport/tennis" }, MatchAll(index, "sport/+"));
        Assert.Equal(new[] { "/finance", "sport/", "sport/tennis" }, MatchAll(index, "+/+"));
        Assert.Equal(new[] { "finance", "sport" }, MatchAll(index, "+"));
    }

    [Fact]
    public void Wildcards_at_the_root_skip_dollar_topics_MQTT_4_7_2_1()
    {
        var index = Retained("$SYS/broker/uptime", "$SYS", "a/b", "a/$SYS");

        Assert.Equal(new[] { "a/$SYS", "a/b" }, MatchAll(index, "#"));
        Assert.Equal(new[] { "a/$SYS", "a/b" }, MatchAll(index, "+/+"));
        Assert.Equal(new[] { "$SYS", "$SYS/broker/uptime" }, MatchAll(index, "$SYS/#"));
        Assert.Empty(MatchAll(index, "+/broker/uptime"));
    }

    [Fact]
    public void Add_Remove_and_Contains_keep_count_and_prune_empty_nodes()
    {
        var index = new TopicNameIndex();
        Assert.True(index.Add("a/b/c"));
        Assert.False(index.Add("a/b/c"));
        Assert.True(index.Add("a"));
        Assert.Equal(2, index.Count);
        Assert.Equal(3, index.NodeCount);
        Assert.True(index.Contains("a/b/c"));
        Assert.False(index.Contains("a/b"));

        Assert.False(index.Remove("a/b"));
        Assert.True(index.Remove("a/b/c"));
        Assert.False(index.Contains("a/b/c"));
        Assert.Equal(1, index.NodeCount); // "a" stays, it is a name
        Assert.True(index.Remove("a"));
        Assert.Equal(0, index.NodeCount);
        Assert.Equal(0, index.Count);
    }

    [Theory]
    [InlineData("a/+")]
    [InlineData("#")]
    [InlineData("")]
    [InlineData("a\0")]
    public void Add_rejects_an_invalid_topic_name(string topic)
    {
        Assert.Throws<ArgumentException>(() => new TopicNameIndex().Add(topic));
    }

    /// <summary>
    /// Interleaved adds and removes of random names, then random filters: the index returns exactly the stored names
    /// the reference matcher accepts, each once.
    /// </summary>
    [Property(MaxTest = 3000, Arbitrary = [typeof(NameIndexGenerators)])]
    public bool Name_index_match_equals_the_reference_matcher_over_all_names(TopicScenario scenario)
    {
        var index = new TopicNameIndex();
        var model = new HashSet<string>(StringComparer.Ordinal);

        foreach (var op in scenario.Ops)
        {
            var changed = op.IsAdd ? index.Add(op.Topic) : index.Remove(op.Topic);
            if (changed != (op.IsAdd ? model.Add(op.Topic) : model.Remove(op.Topic)))
                return false;
        }

        if (index.Count != model.Count || (model.Count == 0 && index.NodeCount != 0))
            return false;
        foreach (var name in model)
        {
            if (!index.Contains(name))
                return false;
        }

        foreach (var filter in scenario.Probes)
        {
            var expected = model.Where(t => MqttTopic.Matches(filter, t)).Order(StringComparer.Ordinal).ToList();
            if (!expected.SequenceEqual(MatchAll(index, filter)))
                return false;
        }

        return true;
    }
}
