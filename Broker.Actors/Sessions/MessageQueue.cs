namespace Broker.Sessions;

/// <summary>
/// The queue of messages a session holds beyond its in-flight window (emqx_mqueue's role), bounded by a count and by
/// payload bytes. Both bounds are a high-water mark; the low-water mark is three quarters of each.
/// <code>
///   enqueue ─► [ m5 m4 m3 m2 m1 ] ─► dequeue (to the in-flight window)
///              ├── low ──┤
///              ├────── high (Sessions:MaxQueuedMessages, Sessions:MaxQueuedBytes) ──┤
///   full (at or above high)?   drop-oldest: m1 goes, counted      otherwise: the queue takes it; the session decides
///                                                                 before enqueueing (hold, refuse, drop the newest)
/// </code>
/// A message is taken whenever the queue is below both marks, so one message larger than the byte bound still passes.
/// </summary>
public sealed class MessageQueue
{
    private LinkedList<QueuedMessage>? _items; // created with the first message: most sessions never queue one

    public MessageQueue(int capacity, long maxBytes = long.MaxValue, bool dropOldest = true)
    {
        Capacity = capacity;
        MaxBytes = maxBytes;
        DropsOldest = dropOldest;
    }

    /// <summary>The count high-water mark.</summary>
    public int Capacity { get; set; }

    /// <summary>The payload-bytes high-water mark.</summary>
    public long MaxBytes { get; set; }

    /// <summary>Enqueueing into a full queue drops the oldest messages until it is below both marks again.</summary>
    public bool DropsOldest { get; set; }

    public int Count => _items?.Count ?? 0;

    /// <summary>Payload bytes of the queued messages.</summary>
    public long Bytes { get; private set; }

    public long Dropped { get; private set; }

    /// <summary>At or above a high-water mark.</summary>
    public bool IsFull => Count >= Capacity || Bytes >= MaxBytes;

    /// <summary>At or below both low-water marks (three quarters of each high-water mark).</summary>
    public bool IsBelowLowWater => Count <= Capacity - (Capacity / 4) && Bytes <= MaxBytes - (MaxBytes / 4);

    /// <summary>At or above twice a high-water mark: the hard bound for messages nobody can be made to wait for.</summary>
    public bool IsOverflowing => Count >= 2L * Capacity || Bytes >= 2 * Math.Min(MaxBytes, long.MaxValue / 2);

    private static long SizeOf(QueuedMessage m) => m.Message.Payload.Length;

    /// <summary>
    /// Adds a message; with <see cref="DropsOldest"/> (and <paramref name="mayDrop"/>), returns the messages dropped to
    /// make room (else null).
    /// </summary>
    public List<QueuedMessage>? Enqueue(QueuedMessage message, bool mayDrop = true)
    {
        List<QueuedMessage>? dropped = null;
        if (DropsOldest && mayDrop)
        {
            while (_items?.First is { } first && IsFull)
            {
                _items.RemoveFirst();
                Bytes -= SizeOf(first.Value);
                Dropped++;
                (dropped ??= new(1)).Add(first.Value);
            }
        }

        (_items ??= new()).AddLast(message);
        Bytes += SizeOf(message);
        return dropped;
    }

    public bool TryPeek(out QueuedMessage message)
    {
        if (_items?.First is { } first)
        {
            message = first.Value;
            return true;
        }

        message = null!;
        return false;
    }

    public QueuedMessage Dequeue()
    {
        var first = _items?.First ?? throw new InvalidOperationException("The queue is empty");
        _items!.RemoveFirst();
        Bytes -= SizeOf(first.Value);
        return first.Value;
    }

    /// <summary>Removes the first message the predicate selects; null when none does.</summary>
    public QueuedMessage? RemoveFirst(Func<QueuedMessage, bool> predicate)
    {
        for (var node = _items?.First; node is not null; node = node.Next)
        {
            if (predicate(node.Value))
            {
                Bytes -= SizeOf(node.Value);
                _items!.Remove(node);
                return node.Value;
            }
        }

        return null;
    }

    public void Clear()
    {
        _items?.Clear();
        Bytes = 0;
    }

    /// <summary>Removes every message the predicate selects, keeping the order of the rest.</summary>
    public List<QueuedMessage> RemoveWhere(Func<QueuedMessage, bool> predicate)
    {
        var removed = new List<QueuedMessage>();
        for (var node = _items?.First; node is not null;)
        {
            var next = node.Next;
            if (predicate(node.Value))
            {
                removed.Add(node.Value);
                Bytes -= SizeOf(node.Value);
                _items!.Remove(node);
            }

            node = next;
        }

        return removed;
    }

    /// <summary>Replaces every message by <paramref name="map"/>'s result, in place (order unchanged).</summary>
    public void Map(Func<QueuedMessage, QueuedMessage> map)
    {
        for (var node = _items?.First; node is not null; node = node.Next)
        {
            var before = SizeOf(node.Value);
            node.Value = map(node.Value);
            Bytes += SizeOf(node.Value) - before;
        }
    }

    public IEnumerable<QueuedMessage> Items => _items ?? (IEnumerable<QueuedMessage>)[];
}
