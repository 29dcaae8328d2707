namespace Broker.Sessions;

/// <summary>
/// Keeps a persistent session's inbound QoS 2 messages in the order they came while some of them are routed again
/// ([MQTT-4.6.0-6]: a server sends the messages of one client on one topic to its subscribers in the order it received
/// them). Pure; the session entity owns the routing.
/// <para>
/// A routing can be lost with a node that fails: until the others have removed the node, a shard region still sends
/// to it. A message routed after the removal goes through at once (the region buffers it until the shard lives
/// elsewhere), and a message lost before it, routed again later, would reach the subscribers after it. So once the
/// session routes messages again (its client came back on a new connection, a node left, the session was recovered,
/// the client sent a pending message again), those messages block: what the session accepts next is journaled as
/// pending as always but held, and routed in order only when every blocking message was stored for every subscriber
/// or given up.
/// </para>
/// <code>
///   41 routed again ──► blocking {41}      42 accepted ──► journaled pending, held [42]
///   41 stored everywhere (or released) ──► blocking {} ──► route 42, 43, ... in the order they came
/// </code>
/// A blocking message whose routing timed out but stays pending (a 3.1.1 client is disconnected and resends it) keeps
/// blocking until its client sends it again or comes back, when it is routed again first.
/// </summary>
public sealed class InboundRouteOrder
{
    private readonly HashSet<ushort> _blocking = new();
    private readonly List<InboundQos2Pending> _held = new();

    /// <summary>Messages accepted now are held.</summary>
    public bool Blocked => _blocking.Count > 0;

    public int HeldCount => _held.Count;

    public bool IsBlocking(ushort packetId) => _blocking.Contains(packetId);

    /// <summary>The blocking messages (packet ids), for routing them again.</summary>
    public IReadOnlyCollection<ushort> Blocking => _blocking;

    /// <summary><paramref name="packetId"/> is routed again: later messages wait for it.</summary>
    public void RoutedAgain(ushort packetId) => _blocking.Add(packetId);

    /// <summary>A message accepted and journaled: true when it is held (something blocks), false to route it now.</summary>
    public bool TryHold(InboundQos2Pending pending)
    {
        if (_blocking.Count == 0 && _held.Count == 0)
        {
            return false;
        }

        _held.Add(pending);
        return true;
    }

    /// <summary>
    /// <paramref name="packetId"/> no longer blocks (stored for every subscriber, released or discarded): the held
    /// messages to route now, in the order they came, once nothing blocks; otherwise null.
    /// </summary>
    public List<InboundQos2Pending>? Done(ushort packetId)
    {
        if (!_blocking.Remove(packetId) || _blocking.Count > 0 || _held.Count == 0)
        {
            return null;
        }

        var release = _held.ToList();
        _held.Clear();
        return release;
    }

    /// <summary>Clean Start, or recovery (which routes every pending message again in order): nothing blocks or waits.</summary>
    public void Clear()
    {
        _blocking.Clear();
        _held.Clear();
    }
}
