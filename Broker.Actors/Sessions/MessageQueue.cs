namespace Broker.Sessions;

/// <summary>
/// The bounded queue of messages a session holds beyond its in-flight window (emqx_mqueue's role).
/// <code>
///   enqueue ─► [ m5 m4 m3 m2 m1 ] ─► dequeue (to the in-flight window)
///                              ▲
///              full? drop the oldest (m1) and count it
/// </code>
/// Dropping the oldest keeps the freshest data for a device that was away, as Mosquitto and EMQX do by default.
/// </summary>
public sealed class MessageQueue
{
    private readonly LinkedList<QueuedMessage> _items = new();

    public MessageQueue(int capacity)
    {
        Capacity = capacity;
    }

    public int Capacity { get; set; }

    public int Count => _items.Count;

    public long Dropped { get; private set; }

    /// <summary>Adds a message; returns the message dropped to make room, if any.</summary>
    public QueuedMessage? Enqueue(QueuedMessage message)
    {
        QueuedMessage? dropped = null;
        if (_items.Count >= Capacity)
        {
            dropped = _items.First!.Value;
            _items.RemoveFirst();
            Dropped++;
        }

        _items.AddLast(message);
        return dropped;
    }

    public bool TryPeek(out QueuedMessage message)
    {
        if (_items.First is { } first)
        {
            message = first.Value;
            return true;
        }

        message = null!;
        return false;
    }

    public QueuedMessage Dequeue()
    {
        var first = _items.First ?? throw new InvalidOperationException("The queue is empty");
        _items.RemoveFirst();
        return first.Value;
    }

    public void Clear() => _items.Clear();

    /// <summary>Removes every message the predicate selects, keeping the order of the rest.</summary>
    public List<QueuedMessage> RemoveWhere(Func<QueuedMessage, bool> predicate)
    {
        var removed = new List<QueuedMessage>();
        for (var node = _items.First; node is not null;)
        {
            var next = node.Next;
            if (predicate(node.Value))
            {
                removed.Add(node.Value);
                _items.Remove(node);
            }

            node = next;
        }

        return removed;
    }

    /// <summary>Replaces every message by <paramref name="map"/>'s result, in place (order unchanged).</summary>
    public void Map(Func<QueuedMessage, QueuedMessage> map)
    {
        for (var node = _items.First; node is not null; node = node.Next)
        {
            node.Value = map(node.Value);
        }
    }

    public IEnumerable<QueuedMessage> Items => _items;
}
