using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// The QoS 2 messages a session has taken, by origin (publisher client id and the random stream id of the publisher's
/// session), so that a message routed a second time is acknowledged without being stored or sent again (MQTT-4.3.3:
/// exactly once). A message is routed twice only when its publisher's session moved or failed after routing it and
/// before every subscriber had stored it: the session that recovers routes it again under the same origin.
/// <para>
/// Bounded. Per origin it keeps the sequence numbers at or above the origin's low-water mark (the lowest number its
/// publisher may still route again, carried by every message), and at least the <see cref="KeepRecent"/> newest
/// ones; a publisher with one message in flight costs one number. At most <see cref="MaxOrigins"/> origins are kept;
/// the one heard from least recently goes first. A second routing of a message whose origin was forgotten is taken
/// again (at least once): that needs more than <see cref="MaxOrigins"/> other QoS 2 publishers to reach this session
/// between the two routings, which are seconds apart (the publisher's session recovering).
/// </para>
/// <code>
///   origin (publisher, stream) ──► [ seq ... seq ]   ascending; below LowWater dropped, the newest KeepRecent kept
///   least recently heard ◄─────────────────────────► most recently heard   (evicted from the left)
/// </code>
/// </summary>
public sealed class SeenOrigins
{
    public const int MaxOrigins = 4096;
    public const int KeepRecent = 8;

    private readonly Dictionary<(string Publisher, long Stream), LinkedListNode<Entry>> _byOrigin = new();
    private readonly LinkedList<Entry> _byRecency = new();

    public int Count => _byOrigin.Count;

    /// <summary>True when the message <paramref name="origin"/> names was taken already.</summary>
    public bool Contains(string publisher, MessageOrigin origin) =>
        _byOrigin.TryGetValue((publisher, origin.Stream), out var node) && node.Value.Seqs.BinarySearch(origin.Seq) >= 0;

    /// <summary>Remembers that the message was taken, and forgets what its low-water mark says cannot come again.</summary>
    public void Record(string publisher, MessageOrigin origin)
    {
        var entry = Touch(publisher, origin.Stream);
        entry.LowWater = Math.Max(entry.LowWater, origin.LowWater);
        var seqs = entry.Seqs;
        var at = seqs.BinarySearch(origin.Seq);
        if (at < 0)
        {
            seqs.Insert(~at, origin.Seq);
        }

        var drop = 0;
        while (seqs.Count - drop > KeepRecent && seqs[drop] < entry.LowWater)
        {
            drop++;
        }

        seqs.RemoveRange(0, drop);
        while (_byOrigin.Count > MaxOrigins)
        {
            var oldest = _byRecency.First!.Value;
            _byRecency.RemoveFirst();
            _byOrigin.Remove((oldest.Publisher, oldest.Stream));
        }
    }

    public void Clear()
    {
        _byOrigin.Clear();
        _byRecency.Clear();
    }

    /// <summary>The memory for a snapshot, least recently heard first (so that <see cref="Restore"/> keeps the order).</summary>
    public List<SeenOrigin> ToList() =>
        _byRecency.Select(e => new SeenOrigin(e.Publisher, e.Stream, e.LowWater, e.Seqs.ToArray())).ToList();

    public void Restore(IEnumerable<SeenOrigin> origins)
    {
        Clear();
        foreach (var o in origins)
        {
            var entry = Touch(o.Publisher, o.Stream);
            entry.LowWater = o.LowWater;
            entry.Seqs.AddRange(o.Seqs.Order());
        }
    }

    private Entry Touch(string publisher, long stream)
    {
        if (_byOrigin.TryGetValue((publisher, stream), out var node))
        {
            _byRecency.Remove(node);
            _byRecency.AddLast(node);
            return node.Value;
        }

        node = _byRecency.AddLast(new Entry(publisher, stream));
        _byOrigin[(publisher, stream)] = node;
        return node.Value;
    }

    private sealed class Entry(string publisher, long stream)
    {
        public string Publisher { get; } = publisher;

        public long Stream { get; } = stream;

        public long LowWater { get; set; }

        public List<long> Seqs { get; } = new();
    }
}

/// <summary>What <see cref="SeenOrigins"/> remembers of one origin (in a <see cref="SessionSnapshot"/>).</summary>
public sealed record SeenOrigin(string Publisher, long Stream, long LowWater, IReadOnlyList<long> Seqs);
