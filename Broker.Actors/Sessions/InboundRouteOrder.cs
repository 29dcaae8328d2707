namespace Broker.Sessions;

/// <summary>
/// Keeps a publisher's inbound QoS 1 or QoS 2 messages on one topic in the order they came while earlier ones may
/// have been lost on their way ([MQTT-4.6.0-6]: a server sends the messages of one client on one topic and QoS to its
/// subscribers in the order it received them). Pure; the owner routes and decides what blocks: a persistent
/// session's entity for QoS 2 (<typeparamref name="T"/> its journaled pending entries), the connection for QoS 1.
/// <para>
/// A routing can be lost with a node that fails: until the others have removed the node, a shard region still sends
/// to it. A message routed after the removal goes through at once (the region buffers it until the shard lives
/// elsewhere), and a message lost before it, routed again later, would reach the subscribers after it. So a message
/// that may have been lost blocks its topic: one routed again (QoS 2: its client came back on a new connection, a node
/// left, the session was recovered, the client sent a pending message again), or one still on its way while a node is
/// unreachable or has just left (<see cref="RouteRetry"/>). What is accepted next on a blocked topic is
/// held (a QoS 2 message journaled as pending as always), and routed in order once nothing blocks the topic any more
/// (every blocking message was stored for every subscriber or given up). Other topics go on.
/// </para>
/// <code>
///   41 on t routed again ──► blocking {41: t}      42 on t accepted ──► journaled pending, held [42]
///   43 on u accepted ──► routed at once
///   41 stored everywhere (or released) ──► t unblocked ──► route 42 (and what else was held on t, in order)
/// </code>
/// A blocking message whose routing timed out but stays pending (a 3.1.1 client is disconnected and resends it) keeps
/// blocking until its client sends it again or comes back, when it is routed again first.
/// </summary>
public sealed class InboundRouteOrder<T>
{
    private readonly Dictionary<ushort, string> _blocking = new(); // packet id -> topic
    private readonly Dictionary<string, int> _blockedTopics = new(StringComparer.Ordinal);
    private readonly List<(T Item, string Topic)> _held = new();

    /// <summary>Some topic is blocked.</summary>
    public bool Blocked => _blocking.Count > 0;

    public int HeldCount => _held.Count;

    /// <summary>The blocking messages (packet ids), for routing them again.</summary>
    public IReadOnlyCollection<ushort> Blocking => _blocking.Keys;

    /// <summary>
    /// <paramref name="packetId"/>, on <paramref name="topic"/>, may have been lost (it is routed again, or was on its
    /// way when a node failed): later messages on its topic wait for it.
    /// </summary>
    public void Block(ushort packetId, string topic)
    {
        if (_blocking.TryAdd(packetId, topic))
        {
            _blockedTopics[topic] = _blockedTopics.GetValueOrDefault(topic) + 1;
        }
    }

    /// <summary>A message accepted on <paramref name="topic"/>: true when it is held (its topic is blocked), false to route it now.</summary>
    public bool TryHold(T item, string topic)
    {
        if (_blockedTopics.Count == 0 || !_blockedTopics.ContainsKey(topic))
        {
            return false;
        }

        _held.Add((item, topic));
        return true;
    }

    /// <summary>
    /// <paramref name="packetId"/> no longer blocks (stored for every subscriber, released or discarded): the held
    /// messages to route now, in the order they came, of the topics nothing blocks any more; otherwise null.
    /// </summary>
    public List<T>? Done(ushort packetId)
    {
        if (!_blocking.Remove(packetId, out var topic))
        {
            return null;
        }

        if (--_blockedTopics[topic] > 0)
        {
            return null;
        }

        _blockedTopics.Remove(topic);
        List<T>? release = null;
        _held.RemoveAll(h =>
        {
            if (_blockedTopics.ContainsKey(h.Topic))
            {
                return false;
            }

            (release ??= []).Add(h.Item);
            return true;
        });
        return release;
    }

    /// <summary>QoS 2: Clean Start, or recovery (which routes every pending message again in order): nothing blocks or waits.</summary>
    public void Clear()
    {
        _blocking.Clear();
        _blockedTopics.Clear();
        _held.Clear();
    }
}
