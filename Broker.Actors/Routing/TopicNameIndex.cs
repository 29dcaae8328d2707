using Broker.Protocol;

namespace Broker.Routing;

// =====================================================================================================================
//  Topic name index: which stored topic names match a subscribed filter?
// =====================================================================================================================
//
//  The inverse of TopicTrie. Retained messages are keyed by topic NAME, and a SUBSCRIBE asks which of them its
//  FILTER matches ("the Server MUST send ... retained messages matching the Topic Filter", MQTT-v5.0 3.3.1.3). The
//  names are kept as a tree of levels, and the filter walks the tree:
//
//      literal level  -> follow one child (dictionary lookup by span, no allocation);
//      '+'            -> follow every child of this node (one level, possibly the empty level "");
//      '#'            -> collect this node (the parent level: "sport/#" matches "sport") and its whole subtree;
//      filter ends    -> collect this node if a name ends here.
//
//  At the root, '+' and '#' skip children whose level starts with '$' [MQTT-4.7.2-1]: "#" does not return the
//  retained "$SYS/broker/uptime". The cost is proportional to the part of the tree the filter can reach, so
//  "sensors/+/temp" touches only the "sensors" subtree's second level, never the whole store; only "#" (and
//  leading-wildcard filters in general) is a full scan, and then it is one by necessity. Mosquitto's retain.c keeps
//  retained messages in the same kind of per-level tree and searches it with the subscriber's filter.
//
//  Each node that ends a stored name keeps the full name string, so a match adds strings to the results list
//  without building them. Remove prunes nodes left empty, bottom-up.
//
//  Thread safety: none. The index is owned by one actor (the retained-message store).
// =====================================================================================================================

/// <summary>
/// An index of topic names (no wildcards) that answers which stored names match a topic filter, without scanning
/// every name when the filter is selective. Owns only the names; the retained messages live elsewhere, keyed by name.
/// Single-threaded: owned by one actor.
/// </summary>
public sealed class TopicNameIndex
{
    private readonly Node _root = new(null, string.Empty);

    /// <summary>Number of stored topic names.</summary>
    public int Count { get; private set; }

    /// <summary>Stores <paramref name="topic"/>.</summary>
    /// <returns>True if it was not already stored.</returns>
    /// <exception cref="ArgumentException">Not a valid topic name: validate with <see cref="MqttTopic.ValidateTopicName"/>.</exception>
    public bool Add(string topic)
    {
        var validation = MqttTopic.ValidateTopicName(topic);
        if (validation != TopicValidation.Valid)
            throw new ArgumentException($"Invalid topic name ({validation}): '{topic}'", nameof(topic));

        var node = _root;
        var rest = topic.AsSpan();
        while (true)
        {
            var slash = rest.IndexOf(MqttTopic.LevelSeparator);
            node = node.GetOrAddChild(slash < 0 ? rest : rest[..slash]);
            if (slash < 0)
                break;
            rest = rest[(slash + 1)..];
        }

        if (node.Topic is not null)
            return false;
        node.Topic = topic;
        Count++;
        return true;
    }

    /// <summary>Removes <paramref name="topic"/> and prunes nodes left empty.</summary>
    public bool Remove(string topic)
    {
        var node = Find(topic);
        if (node?.Topic is null)
            return false;

        node.Topic = null;
        Count--;
        while (node.Parent is { } parent && node.IsEmpty)
        {
            parent.RemoveChild(node);
            node = parent;
        }
        return true;
    }

    public bool Contains(string topic) => Find(topic)?.Topic is not null;

    /// <summary>
    /// Appends every stored name matching <paramref name="filter"/> to <paramref name="results"/>, each once, in
    /// unspecified order. The filter is taken literally (strip "$share/{group}/" first) and assumed valid.
    /// </summary>
    public void Match(string filter, List<string> results)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(results);
        Walk(_root, filter, 0, results);
    }

    // pos: index in filter where the next unconsumed level starts, or -1 when the filter is used up.
    private static void Walk(Node node, string filter, int pos, List<string> results)
    {
        if (pos < 0)
        {
            if (node.Topic is not null)
                results.Add(node.Topic);
            return;
        }

        var slash = filter.IndexOf(MqttTopic.LevelSeparator, pos);
        var level = slash < 0 ? filter.AsSpan(pos) : filter.AsSpan(pos, slash - pos);
        var next = slash < 0 ? -1 : slash + 1;
        var atRoot = node.Parent is null;

        if (MqttTopic.IsMultiLevel(level))
        {
            // '#' matches the parent level and every descendant [MQTT-4.7.1-2]; the root itself is never a name.
            if (node.Topic is not null)
                results.Add(node.Topic);
            foreach (var child in node.Children)
            {
                if (!(atRoot && IsDollar(child)))
                    CollectSubtree(child, results);
            }
        }
        else if (MqttTopic.IsSingleLevel(level))
        {
            foreach (var child in node.Children)
            {
                if (!(atRoot && IsDollar(child))) // [MQTT-4.7.2-1]
                    Walk(child, filter, next, results);
            }
        }
        else if (node.TryGetChild(level, out var child))
        {
            Walk(child, filter, next, results);
        }
    }

    private static void CollectSubtree(Node node, List<string> results)
    {
        if (node.Topic is not null)
            results.Add(node.Topic);
        foreach (var child in node.Children)
            CollectSubtree(child, results);
    }

    /// <summary>Number of tree nodes below the root, for tests that check pruning.</summary>
    internal int NodeCount => CountNodes(_root) - 1;

    private static int CountNodes(Node node)
    {
        var n = 1;
        foreach (var child in node.Children)
            n += CountNodes(child);
        return n;
    }

    private static bool IsDollar(Node node) => node.Level.Length > 0 && node.Level[0] == '$';

    private Node? Find(string topic)
    {
        var node = _root;
        var rest = topic.AsSpan();
        while (true)
        {
            var slash = rest.IndexOf(MqttTopic.LevelSeparator);
            if (!node.TryGetChild(slash < 0 ? rest : rest[..slash], out var child))
                return null;
            if (slash < 0)
                return child;
            node = child;
            rest = rest[(slash + 1)..];
        }
    }

    /// <summary>One name level; <see cref="Topic"/> is set when a stored name ends here.</summary>
    private sealed class Node(Node? parent, string level)
    {
        private static readonly Dictionary<string, Node> NoChildren = new(StringComparer.Ordinal);

        public readonly Node? Parent = parent;
        public readonly string Level = level;
        public string? Topic;
        private Dictionary<string, Node>? _children;
        private Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> _lookup;

        /// <summary>The children, for enumeration only (struct enumerator, no allocation).</summary>
        public Dictionary<string, Node>.ValueCollection Children => (_children ?? NoChildren).Values;

        public bool IsEmpty => Topic is null && (_children is null || _children.Count == 0);

        public bool TryGetChild(ReadOnlySpan<char> level, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Node? child)
        {
            if (_children is null)
            {
                child = null;
                return false;
            }
            return _lookup.TryGetValue(level, out child);
        }

        public Node GetOrAddChild(ReadOnlySpan<char> level)
        {
            if (TryGetChild(level, out var existing))
                return existing;
            if (_children is null)
            {
                _children = new Dictionary<string, Node>(StringComparer.Ordinal);
                _lookup = _children.GetAlternateLookup<ReadOnlySpan<char>>();
            }
            var name = level.ToString();
            var child = new Node(this, name);
            _children.Add(name, child);
            return child;
        }

        public void RemoveChild(Node child) => _children?.Remove(child.Level);
    }
}
