using Broker.Protocol;

namespace Broker.Routing;

// =====================================================================================================================
//  Topic trie: which subscriptions match a published topic name?
// =====================================================================================================================
//
//  The naive router checks every filter against every PUBLISH: O(filters x levels). The trie shares prefixes between
//  filters so a PUBLISH costs O(levels x wildcard fan-out), independent of how many literal filters exist. This is the
//  structure of Mosquitto's subs.c (a tree of "subhier" nodes, one per level, walked recursively per PUBLISH) and of
//  EMQX's emqx_trie; EMQX's emqx_trie_search reaches the same result by ordered-set range scans.
//
//  Shape. One node per distinct filter prefix. A node has three kinds of children, kept apart so the walk never has
//  to test strings for wildcards:
//
//      root ─┬─ "sport" ─┬─ "tennis" ─┬─ "player1" ─── '#'        filters: sport/tennis/player1/#
//            │           │            └─ '+'                               sport/tennis/+
//            │           └─ '#'                                            sport/#
//            ├─ '+' ───── "monitor"                                        +/monitor
//            ├─ '#'                                                        #
//            └─ "$SYS" ── '#'                                              $SYS/#
//
//    * literal children in a Dictionary<string, Node>, looked up by ReadOnlySpan<char> through .NET's
//      alternate-key lookup, so the topic is never split into strings;
//    * at most one '+' child and one '#' child, as fields.
//  A node that ends at least one filter holds that filter string and a Dictionary<TKey, TValue> of the subscribers
//  (TKey is a client id or session reference, TValue the subscription options). One filter, many subscribers.
//
//  Match walk. Walk(node, next level of the topic):
//
//      topic exhausted    -> report node's subscribers, and node.'#' subscribers ("sport/#" matches "sport",
//                            the '#' matches the parent level, [MQTT-4.7.1-2]); stop.
//      otherwise          -> report node.'#' subscribers ('#' eats this level and all that follow);
//                            Walk(node.'+', following level)          ('+' eats exactly this level, even if empty);
//                            Walk(node.literal[level], following level).
//
//  At the root, a topic whose first level starts with '$' skips the '+' and '#' children: filters starting with a
//  wildcard do not match "$SYS/..." [MQTT-4.7.2-1]. Each filter matches a topic along at most one path (every filter
//  level consumes exactly one topic level, except a final '#'), so each (filter, key) is reported at most once and
//  no de-duplication set is needed. Cost: the walk visits at most 2^levels nodes in the pathological all-'+' trie,
//  and in practice close to levels x (1 + number of '+' branches).
//
//  Add/Remove walk the filter's levels the same way. Remove prunes the nodes it leaves empty, bottom-up through
//  parent links, so a churn of unique filters does not leak nodes.
//
//  Shared subscriptions are not special here: "$share/g/x" would be stored literally. The router strips the share
//  prefix (MqttTopic.TryParseShared) and keeps the group in TKey or TValue.
//
//  Thread safety: none. A trie is owned by exactly one actor (the topic router), which mutates and reads it from its
//  own message handler; nothing here takes locks (MQTTnet's shared dictionaries behind locks are the anti-example).
// =====================================================================================================================

/// <summary>
/// A trie of MQTT topic filters. It owns the (filter, key) -> value subscription entries and answers which of them
/// match a topic name. Pure and single-threaded: owned by one actor. See the essay at the top of the file.
/// </summary>
public sealed class TopicTrie<TKey, TValue> where TKey : notnull
{
    private readonly Node _root = new(null, string.Empty);
    private readonly IEqualityComparer<TKey>? _keyComparer;

    public TopicTrie(IEqualityComparer<TKey>? keyComparer = null) => _keyComparer = keyComparer;

    /// <summary>Number of (filter, key) entries.</summary>
    public int Count { get; private set; }

    /// <summary>Number of distinct filters with at least one subscriber.</summary>
    public int FilterCount { get; private set; }

    /// <summary>Adds or replaces the value for (<paramref name="filter"/>, <paramref name="key"/>).</summary>
    /// <returns>True if the entry is new, false if an existing value was replaced.</returns>
    /// <exception cref="ArgumentException">The filter is not valid: validate with <see cref="MqttTopic.ValidateTopicFilter"/> first.</exception>
    public bool Add(string filter, TKey key, TValue value)
    {
        var validation = MqttTopic.ValidateTopicFilter(filter);
        if (validation != TopicValidation.Valid)
            throw new ArgumentException($"Invalid topic filter ({validation}): '{filter}'", nameof(filter));

        var node = _root;
        var rest = filter.AsSpan();
        var pos = 0;
        while (true)
        {
            var slash = rest.IndexOf(MqttTopic.LevelSeparator);
            var level = slash < 0 ? rest : rest[..slash];
            node = node.GetOrAddChild(level, filter, pos);
            if (slash < 0)
                break;
            rest = rest[(slash + 1)..];
            pos += slash + 1;
        }

        if (node.Subscribers is null)
        {
            node.Subscribers = new Dictionary<TKey, TValue>(_keyComparer);
            node.Filter = filter;
        }

        if (node.Subscribers.Count == 0)
            FilterCount++;

        var isNew = node.Subscribers.TryAdd(key, value);
        if (isNew)
            Count++;
        else
            node.Subscribers[key] = value;
        return isNew;
    }

    /// <summary>Removes (<paramref name="filter"/>, <paramref name="key"/>) and prunes nodes left empty.</summary>
    /// <returns>True if the entry existed.</returns>
    public bool Remove(string filter, TKey key)
    {
        var node = Find(filter);
        if (node?.Subscribers is null || !node.Subscribers.Remove(key))
            return false;

        Count--;
        if (node.Subscribers.Count == 0)
        {
            FilterCount--;
            node.Subscribers = null;
            node.Filter = null;
            Prune(node);
        }

        return true;
    }

    public bool TryGet(string filter, TKey key, out TValue value)
    {
        var node = Find(filter);
        if (node?.Subscribers is not null && node.Subscribers.TryGetValue(key, out value!))
            return true;
        value = default!;
        return false;
    }

    /// <summary>True if any key subscribes to exactly <paramref name="filter"/>.</summary>
    public bool ContainsFilter(string filter) => Find(filter)?.Subscribers is { Count: > 0 };

    /// <summary>
    /// Calls <paramref name="visitor"/> once for every (filter, key, value) whose filter matches topic name
    /// <paramref name="topic"/>. Allocates nothing. Order is unspecified. The visitor must not modify this trie.
    /// </summary>
    public void Match<TVisitor>(string topic, ref TVisitor visitor)
        where TVisitor : struct, ITopicMatchVisitor<TKey, TValue>
    {
        ArgumentNullException.ThrowIfNull(topic);
        var root = _root;

        // [MQTT-4.7.2-1]: "$SYS/..." is not matched by "#", "+/...".
        var dollar = topic.Length > 0 && topic[0] == '$';
        if (!dollar && root.Hash is not null)
            VisitAll(root.Hash, ref visitor);

        var slash = topic.IndexOf(MqttTopic.LevelSeparator);
        var next = slash < 0 ? -1 : slash + 1;
        if (!dollar && root.Plus is not null)
            Walk(root.Plus, topic, next, ref visitor);
        if (root.TryGetLiteral(slash < 0 ? topic.AsSpan() : topic.AsSpan(0, slash), out var child))
            Walk(child, topic, next, ref visitor);
    }

    /// <summary>Appends every matching (filter, key, value) to <paramref name="results"/>.</summary>
    public void Match(string topic, List<(string Filter, TKey Key, TValue Value)> results)
    {
        var collector = new ListCollector(results);
        Match(topic, ref collector);
    }

    // pos: index in topic where the next unconsumed level starts, or -1 when every level has been consumed.
    private static void Walk<TVisitor>(Node node, string topic, int pos, ref TVisitor visitor)
        where TVisitor : struct, ITopicMatchVisitor<TKey, TValue>
    {
        if (pos < 0)
        {
            VisitAll(node, ref visitor);
            if (node.Hash is not null)
                VisitAll(node.Hash, ref visitor); // "sport/#" matches "sport" [MQTT-4.7.1-2]
            return;
        }

        if (node.Hash is not null)
            VisitAll(node.Hash, ref visitor);

        var slash = topic.IndexOf(MqttTopic.LevelSeparator, pos);
        var level = slash < 0 ? topic.AsSpan(pos) : topic.AsSpan(pos, slash - pos);
        var next = slash < 0 ? -1 : slash + 1;

        if (node.Plus is not null)
            Walk(node.Plus, topic, next, ref visitor);
        if (node.TryGetLiteral(level, out var child))
            Walk(child, topic, next, ref visitor);
    }

    private static void VisitAll<TVisitor>(Node node, ref TVisitor visitor)
        where TVisitor : struct, ITopicMatchVisitor<TKey, TValue>
    {
        if (node.Subscribers is null)
            return;
        var filter = node.Filter!;
        foreach (var (key, value) in node.Subscribers)
            visitor.Visit(filter, key, value);
    }

    /// <summary>Number of trie nodes below the root, for tests that check pruning.</summary>
    internal int NodeCount => CountNodes(_root) - 1;

    private static int CountNodes(Node node)
    {
        var n = 1 + (node.Plus is null ? 0 : CountNodes(node.Plus)) + (node.Hash is null ? 0 : CountNodes(node.Hash));
        foreach (var child in node.Literals)
            n += CountNodes(child);
        return n;
    }

    private Node? Find(string filter)
    {
        var node = _root;
        var rest = filter.AsSpan();
        while (true)
        {
            var slash = rest.IndexOf(MqttTopic.LevelSeparator);
            var level = slash < 0 ? rest : rest[..slash];
            node = node.GetChild(level);
            if (node is null || slash < 0)
                return node;
            rest = rest[(slash + 1)..];
        }
    }

    private static void Prune(Node node)
    {
        while (node.Parent is { } parent && node.IsEmpty)
        {
            parent.RemoveChild(node);
            node = parent;
        }
    }

    private readonly struct ListCollector(List<(string Filter, TKey Key, TValue Value)> results)
        : ITopicMatchVisitor<TKey, TValue>
    {
        public void Visit(string filter, TKey key, TValue value) => results.Add((filter, key, value));
    }

    /// <summary>One filter level. Owns its children and, if a filter ends here, that filter's subscribers.</summary>
    private sealed class Node(Node? parent, string level)
    {
        private static readonly Dictionary<string, Node> NoLiterals = new(StringComparer.Ordinal);

        public readonly Node? Parent = parent;
        public readonly string Level = level;
        public Node? Plus;
        public Node? Hash;
        public string? Filter;
        public Dictionary<TKey, TValue>? Subscribers;
        private Dictionary<string, Node>? _literals;
        private Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> _lookup;

        public Dictionary<string, Node>.ValueCollection Literals => (_literals ?? NoLiterals).Values;

        public bool IsEmpty => Subscribers is null && Plus is null && Hash is null && (_literals is null || _literals.Count == 0);

        public bool TryGetLiteral(ReadOnlySpan<char> level, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Node? child)
        {
            if (_literals is null)
            {
                child = null;
                return false;
            }
            return _lookup.TryGetValue(level, out child);
        }

        public Node? GetChild(ReadOnlySpan<char> level)
        {
            if (MqttTopic.IsSingleLevel(level))
                return Plus;
            if (MqttTopic.IsMultiLevel(level))
                return Hash;
            return TryGetLiteral(level, out var child) ? child : null;
        }

        // filter/offset let a new literal node take its level string without re-slicing when the level is the whole filter.
        public Node GetOrAddChild(ReadOnlySpan<char> level, string filter, int offset)
        {
            if (MqttTopic.IsSingleLevel(level))
                return Plus ??= new Node(this, "+");
            if (MqttTopic.IsMultiLevel(level))
                return Hash ??= new Node(this, "#");
            if (TryGetLiteral(level, out var existing))
                return existing;

            if (_literals is null)
            {
                _literals = new Dictionary<string, Node>(StringComparer.Ordinal);
                _lookup = _literals.GetAlternateLookup<ReadOnlySpan<char>>();
            }

            var name = offset == 0 && level.Length == filter.Length ? filter : level.ToString();
            var child = new Node(this, name);
            _literals.Add(name, child);
            return child;
        }

        public void RemoveChild(Node child)
        {
            if (ReferenceEquals(child, Plus))
                Plus = null;
            else if (ReferenceEquals(child, Hash))
                Hash = null;
            else
                _literals?.Remove(child.Level);
        }
    }
}
