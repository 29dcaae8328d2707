namespace Broker.Persistence;

/// <summary>
/// The serialized state of passivated entities, kept by this node's <see cref="StoredEntityDirectory"/> so that an
/// entity woken again (a resume, a delivery, its expiry) starts from it without reading storage. Pure bookkeeping:
/// the directory decides when an entry is valid.
/// <para>
/// Why an entry is never stale: it is the entity's state once every one of its writes was stored (so it equals what
/// its journal would replay), taken when it stopped; it belongs to the shard's incarnation on this node (a shard that
/// left and came back is a new Shard actor, and the entries of one that stops are dropped), and only this node writes
/// for a shard it hosts; it is handed out once (the woken entity owns it from then on, and keeps a new one when it
/// passivates again), and dropped when the entity's journal starts or is deleted meanwhile.
/// </para>
/// Bounded twice: an entry larger than <c>maxEntryBytes</c> is not kept (that entity recovers from storage), and past
/// <c>maxTotalBytes</c> in all new entries are refused until entries are taken or dropped.
/// </summary>
public sealed class KeptStates(int maxEntryBytes, long maxTotalBytes)
{
    // Per shard id: entity id -> its serialized state.
    private readonly Dictionary<string, Dictionary<string, byte[]>> _byShard = new(StringComparer.Ordinal);

    /// <summary>Bytes of state kept in all (payload bytes only; each entry costs about 80 bytes more in memory).</summary>
    public long Bytes { get; private set; }

    /// <summary>Entries kept in all.</summary>
    public int Count { get; private set; }

    public bool Enabled => maxEntryBytes > 0 && maxTotalBytes > 0;

    /// <summary>Keeps <paramref name="state"/> for the entity (replacing an older entry); false when it is over a bound.</summary>
    public bool Keep(string shardId, string entityId, byte[] state)
    {
        Drop(shardId, entityId);
        if (!Enabled || state.Length > maxEntryBytes || Bytes + state.Length > maxTotalBytes)
        {
            return false;
        }

        if (!_byShard.TryGetValue(shardId, out var entries))
        {
            _byShard[shardId] = entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        }

        entries[entityId] = state;
        Bytes += state.Length;
        Count++;
        return true;
    }

    /// <summary>Hands out the entity's entry and forgets it (null when none is kept).</summary>
    public byte[]? Take(string shardId, string entityId)
    {
        if (!_byShard.TryGetValue(shardId, out var entries) || !entries.Remove(entityId, out var state))
        {
            return null;
        }

        Bytes -= state.Length;
        Count--;
        if (entries.Count == 0)
        {
            _byShard.Remove(shardId);
        }

        return state;
    }

    /// <summary>Forgets the entity's entry, if any.</summary>
    public void Drop(string shardId, string entityId) => Take(shardId, entityId);

    /// <summary>Forgets every entry of the shard (it left this node, or its incarnation here ended).</summary>
    public void DropShard(string shardId)
    {
        if (_byShard.Remove(shardId, out var entries))
        {
            foreach (var state in entries.Values)
            {
                Bytes -= state.Length;
            }

            Count -= entries.Count;
        }
    }
}
