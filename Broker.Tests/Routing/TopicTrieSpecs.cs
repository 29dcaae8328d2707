using Broker.Protocol;
using Broker.Routing;
using Broker.Tests.Protocol;
using FsCheck.Xunit;
using Xunit;

namespace Broker.Tests.Routing;

/// <summary>The subscription trie: spec examples, bookkeeping, pruning, allocation, and equivalence to the reference matcher.</summary>
public sealed class TopicTrieSpecs
{
    public static TheoryData<string, string, bool, string> Examples => TopicMatchingSpecs.Examples;

    private static List<(string Filter, string Key, int Value)> MatchAll<TValue>(TopicTrie<string, TValue> trie, string topic)
        where TValue : notnull
    {
        var raw = new List<(string Filter, string Key, TValue Value)>();
        trie.Match(topic, raw);
        return raw.Select(r => (r.Filter, r.Key, r.Value is int i ? i : 0)).ToList();
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Trie_follows_the_spec_examples(string filter, string topic, bool expected, string spec)
    {
        var trie = new TopicTrie<string, int>();
        trie.Add(filter, "c1", 1);
        var matches = MatchAll(trie, topic);
        Assert.True(expected == (matches.Count == 1), $"[{spec}] '{filter}' vs '{topic}' should be {expected}");
    }

    [Fact]
    public void Trie_reports_every_matching_subscriber_once()
    {
        var trie = new TopicTrie<string, int>();
        trie.Add("sport/tennis/player1/#", "c1", 1);
        trie.Add("sport/tennis/+/#", "c1", 2);
        trie.Add("sport/#", "c2", 3);
        trie.Add("#", "c3", 4);
        trie.Add("+/tennis/player1", "c4", 5);
        trie.Add("sport/tennis/player1", "c5", 6);
        trie.Add("sport/tennis/player1", "c6", 7);
        trie.Add("sport/football/#", "c7", 8);
        trie.Add("sport/tennis/player1/ranking", "c8", 9);

        var matches = MatchAll(trie, "sport/tennis/player1");

        Assert.Equal(
            new[] { 1, 2, 3, 4, 5, 6, 7 },
            matches.Select(m => m.Value).Order().ToArray());
    }

    [Fact]
    public void Wildcard_filters_at_the_root_do_not_match_dollar_topics_MQTT_4_7_2_1()
    {
        var trie = new TopicTrie<string, int>();
        trie.Add("#", "c1", 1);
        trie.Add("+/monitor/Clients", "c2", 2);
        trie.Add("$SYS/#", "c3", 3);
        trie.Add("$SYS/+/Clients", "c4", 4);

        var matches = MatchAll(trie, "$SYS/monitor/Clients");

        Assert.Equal(new[] { 3, 4 }, matches.Select(m => m.Value).Order().ToArray());
    }

    [Fact]
    public void Add_returns_true_for_a_new_entry_and_false_when_it_replaces_the_value()
    {
        var trie = new TopicTrie<string, int>();
        Assert.True(trie.Add("a/+", "c1", 1));
        Assert.False(trie.Add("a/+", "c1", 2));
        Assert.True(trie.Add("a/+", "c2", 3));

        Assert.Equal(2, trie.Count);
        Assert.Equal(1, trie.FilterCount);
        Assert.True(trie.TryGet("a/+", "c1", out var value));
        Assert.Equal(2, value);
        Assert.False(trie.TryGet("a/+", "c3", out _));
        Assert.False(trie.TryGet("a/#", "c1", out _));
    }

    [Fact]
    public void Remove_drops_the_entry_and_prunes_nodes_left_empty()
    {
        var trie = new TopicTrie<string, int>();
        trie.Add("a/b/c", "c1", 1);
        trie.Add("a/+/#", "c1", 2);
        trie.Add("a", "c2", 3);
        Assert.Equal(5, trie.NodeCount); // a, a/b, a/b/c, a/+, a/+/#

        Assert.True(trie.Remove("a/b/c", "c1"));
        Assert.False(trie.Remove("a/b/c", "c1"));
        Assert.False(trie.Remove("a/b", "c1"));
        Assert.Equal(3, trie.NodeCount); // a, a/+, a/+/#

        Assert.True(trie.Remove("a/+/#", "c1"));
        Assert.Equal(1, trie.NodeCount); // "a" still holds c2
        Assert.True(trie.ContainsFilter("a"));

        Assert.True(trie.Remove("a", "c2"));
        Assert.Equal(0, trie.NodeCount);
        Assert.Equal(0, trie.Count);
        Assert.Equal(0, trie.FilterCount);
        Assert.Empty(MatchAll(trie, "a"));
    }

    [Fact]
    public void Removing_one_subscriber_keeps_the_others_on_the_same_filter()
    {
        var trie = new TopicTrie<string, int>();
        trie.Add("x/#", "c1", 1);
        trie.Add("x/#", "c2", 2);
        trie.Remove("x/#", "c1");

        var match = Assert.Single(MatchAll(trie, "x/y"));
        Assert.Equal(("x/#", "c2", 2), match);
        Assert.Equal(1, trie.FilterCount);
    }

    [Theory]
    [InlineData("sport+")]
    [InlineData("sport/#/x")]
    [InlineData("")]
    [InlineData("$share/g")]
    public void Add_rejects_an_invalid_filter(string filter)
    {
        var trie = new TopicTrie<string, int>();
        Assert.Throws<ArgumentException>(() => trie.Add(filter, "c1", 1));
        Assert.Equal(0, trie.Count);
    }

    private struct CountingVisitor : ITopicMatchVisitor<string, int>
    {
        public int Count;
        public int Sum;

        public void Visit(string filter, string key, int value)
        {
            Count++;
            Sum += value;
        }
    }

    [Fact]
    public void Match_with_a_struct_visitor_allocates_nothing()
    {
        var trie = new TopicTrie<string, int>();
        trie.Add("sport/tennis/+", "c1", 1);
        trie.Add("sport/#", "c2", 2);
        trie.Add("#", "c3", 4);
        trie.Add("+/+/player1", "c4", 8);
        trie.Add("sport/tennis/player1", "c5", 16);
        var topic = "sport/tennis/player1";

        var visitor = new CountingVisitor();
        for (var i = 0; i < 100; i++)
            trie.Match(topic, ref visitor); // warm up (JIT, tiering)

        visitor = new CountingVisitor();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
            trie.Match(topic, ref visitor);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(5 * 1000, visitor.Count);
        Assert.Equal(31 * 1000, visitor.Sum);
    }

    /// <summary>
    /// Interleaved adds and removes of random filters, then random topics: the trie reports exactly the entries the
    /// reference matcher <see cref="MqttTopic.Matches(string, string)"/> accepts, each once, and its counts agree
    /// with a dictionary model.
    /// </summary>
    [Property(MaxTest = 3000, Arbitrary = [typeof(TopicGenerators)])]
    public bool Trie_match_equals_the_reference_matcher_over_all_entries(TopicScenario scenario)
    {
        var trie = new TopicTrie<int, int>();
        var model = new Dictionary<(string Filter, int Key), int>();
        var version = 0;

        foreach (var op in scenario.Ops)
        {
            if (op.IsAdd)
            {
                version++;
                var isNew = !model.ContainsKey((op.Topic, op.Key));
                model[(op.Topic, op.Key)] = version;
                if (trie.Add(op.Topic, op.Key, version) != isNew)
                    return false;
            }
            else if (trie.Remove(op.Topic, op.Key) != model.Remove((op.Topic, op.Key)))
            {
                return false;
            }
        }

        if (trie.Count != model.Count || trie.FilterCount != model.Keys.Select(k => k.Filter).Distinct().Count())
            return false;
        if (model.Count == 0 && trie.NodeCount != 0)
            return false; // everything removed: every node pruned

        var results = new List<(string Filter, int Key, int Value)>();
        foreach (var topic in scenario.Probes)
        {
            results.Clear();
            trie.Match(topic, results);
            var expected = model
                .Where(e => MqttTopic.Matches(e.Key.Filter, topic))
                .Select(e => (e.Key.Filter, e.Key.Key, e.Value))
                .Order()
                .ToList();
            if (!expected.SequenceEqual(results.Order()))
                return false;
        }

        return true;
    }
}
