using Akka.Actor;
using Akka.Event;
using Broker.Cluster;

namespace Broker.Persistence;

/// <summary>
/// Which entities of the shards of one region hosted on this node (sessions by client id, topics by name) have
/// something stored, so that an entity with nothing stored (every clean session, every topic nobody subscribed to)
/// starts without reading the journal. One directory per region and node.
/// <para>
/// Why this is exact: a shard lives on one node at a time, and every entity of it that writes to the journal does
/// so from this node and says so first (<see cref="MarkStored"/>). So once the stored ids of a shard have been read
/// after the shard arrived here, this node's set for it stays complete for as long as the shard stays. Each ask names
/// the asking entity's parent, the Shard actor: a shard that left (hand-off, rebalance) and came back is a new
/// Shard actor, so its set is read again. The set may hold ids whose rows were
/// deleted since (that only costs a needless recovery read), never miss one that has rows.
/// </para>
/// <code>
///   entity starts ─► IsStored(id, shard) ────── ─► shard known? ── yes ─► answer at once
///                                                      └ no ─► look up the waiting ids (indexed) ─► answer them,
///                                                              and read the region's ids once for all new shards
/// </code>
/// A failed look-up answers "stored" (the entity then recovers through the journal, which reports the same failure);
/// a failed read leaves its shards to look-ups until a later read succeeds.
/// <para>
/// It also keeps, within bounds, the state a passivating entity left (<see cref="KeepState"/>, <see cref="KeptStates"/>)
/// and hands it out with the answer to that entity's next start, so that it starts without reading storage. Valid
/// only for the same Shard actor (the shard's stay on this node): watched, and dropped with it.
/// </para>
/// </summary>
public sealed class StoredEntityDirectory : ReceiveActor
{
    private const int MaxPointBatch = 500;
    private readonly Func<string, string> _shardOf;
    private readonly Func<CancellationToken, Task<IReadOnlyList<string>>> _query;
    private readonly Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyList<string>>> _pointQuery;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, (IActorRef Shard, HashSet<string> Stored)> _shards = new(StringComparer.Ordinal);
    // Shards whose set is not read yet: the ids written since they arrived, and the ids looked up and found empty.
    private readonly Dictionary<string, (IActorRef Shard, HashSet<string> Marked, HashSet<string> Empty)> _pending = new(StringComparer.Ordinal);
    private readonly List<(IsStored Ask, IActorRef ReplyTo)> _waiting = new();
    private readonly string _prefix;
    private List<(string ShardId, IActorRef Shard)>? _scanning;
    private bool _pointInFlight;
    private readonly KeptStates _kept;

    /// <param name="prefix">The persistence id prefix of the region's entities ("session-", "topic-").</param>
    /// <param name="shardOf">The region's shard of an entity id.</param>
    /// <param name="query">Reads the persistence ids with the prefix that have live rows.</param>
    /// <param name="pointQuery">Which of these persistence ids have live rows (an indexed look-up).</param>
    /// <param name="kept">The states of passivated entities kept in memory (<see cref="KeepState"/>).</param>
    public StoredEntityDirectory(string prefix, Func<string, string> shardOf, Func<CancellationToken, Task<IReadOnlyList<string>>> query,
        Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyList<string>>> pointQuery, KeptStates? kept = null)
    {
        _kept = kept ?? new KeptStates(0, 0);
        _prefix = prefix;
        _shardOf = shardOf;
        _query = query;
        _pointQuery = pointQuery;

        Receive<IsStored>(ask =>
        {
            if (_shards.TryGetValue(ask.ShardId, out var known))
            {
                if (known.Shard.Equals(ask.Shard))
                {
                    var stored = known.Stored.Contains(ask.EntityId);
                    Sender.Tell(ask.Peek ? Answer(ask, stored) : new StoredAnswer(stored, stored ? _kept.Take(ask.ShardId, ask.EntityId) : null));
                    return;
                }

                ForgetShard(ask.ShardId); // the shard left this node and came back: read it again
            }

            if (!_pending.TryGetValue(ask.ShardId, out var pending) || !pending.Shard.Equals(ask.Shard))
            {
                _pending[ask.ShardId] = (ask.Shard, new HashSet<string>(StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal));
            }
            else if (pending.Marked.Contains(ask.EntityId) || pending.Empty.Contains(ask.EntityId))
            {
                // Known already (this node alone writes for the shard): answered without storage, even while it is down.
                Sender.Tell(Answer(ask, pending.Marked.Contains(ask.EntityId)));
                StartScan();
                return;
            }

            _waiting.Add((ask, Sender));
            StartPointQuery();
            StartScan();
        });
        Receive<MarkStored>(s =>
        {
            _kept.Drop(s.ShardId, s.EntityId); // its journal starts: what it writes from now on is not in the entry
            if (_shards.TryGetValue(s.ShardId, out var known))
            {
                known.Stored.Add(s.EntityId);
            }
            else if (_pending.TryGetValue(s.ShardId, out var pending))
            {
                pending.Marked.Add(s.EntityId); // written after a read may have started: kept beside its result
            }
        });
        Receive<MarkDeleted>(s =>
        {
            _kept.Drop(s.ShardId, s.EntityId);
            if (_shards.TryGetValue(s.ShardId, out var known))
            {
                known.Stored.Remove(s.EntityId);
            }
        });
        Receive<KeepState>(k =>
        {
            // Only for a shard whose set is read, from its current incarnation here, and an entity known to have rows.
            if (_shards.TryGetValue(k.ShardId, out var known) && known.Shard.Equals(k.Shard) && known.Stored.Contains(k.EntityId))
            {
                _kept.Keep(k.ShardId, k.EntityId, k.State);
            }
        });
        Receive<Terminated>(t =>
        {
            // A Shard actor stopped (hand-off, or the region stopped): what was kept for it is no longer valid.
            foreach (var (shardId, known) in _shards.Where(s => s.Value.Shard.Equals(t.ActorRef)).ToList())
            {
                ForgetShard(shardId);
            }
        });
        Receive<ScanResult>(OnScanResult);
        Receive<PointResult>(OnPointResult);
    }

    public static Props Props(string prefix, Func<string, string> shardOf, StorageJanitor janitor, KeptStates? kept = null) =>
        Akka.Actor.Props.Create(() => new StoredEntityDirectory(prefix, shardOf, ct => janitor.LiveIdsWithPrefixAsync(prefix, ct),
            (ids, ct) => janitor.LiveAmongAsync(ids, ct), kept));

    private static StoredAnswer Answer(IsStored ask, bool stored) => new(stored, null, ask.Peek ? ask.EntityId : null);

    private void ForgetShard(string shardId)
    {
        if (_shards.Remove(shardId, out var known))
        {
            Context.Unwatch(known.Shard);
        }

        _kept.DropShard(shardId);
    }

    /// <summary>
    /// Until its shard's set is read, an entity is answered by an indexed look-up of its own id, which is exact
    /// because only this node writes for a shard it hosts: so the first entities of a shard after a start (or a
    /// shard's arrival) do not wait for the read of every stored id. Asks that arrive during a look-up share the next.
    /// </summary>
    private void StartPointQuery()
    {
        if (_pointInFlight || _waiting.Count == 0)
        {
            return;
        }

        var batch = _waiting.GetRange(0, Math.Min(MaxPointBatch, _waiting.Count));
        _waiting.RemoveRange(0, batch.Count);
        _pointInFlight = true;
        var ids = batch.Select(b => _prefix + b.Ask.EntityId).Distinct().ToList();
        _pointQuery(ids, CancellationToken.None).PipeTo(
            Self,
            success: found => new PointResult(batch, found, null),
            failure: e => new PointResult(batch, null, e));
    }

    private void OnPointResult(PointResult result)
    {
        _pointInFlight = false;
        if (result.Found is null)
        {
            _log.Warning("Could not read whether {0} {1}* entities are stored ({2}); they recover through the journal",
                result.Asks.Count, _prefix, result.Error?.GetBaseException().Message);
        }

        var found = result.Found is null ? null : new HashSet<string>(result.Found, StringComparer.Ordinal);
        foreach (var (ask, replyTo) in result.Asks)
        {
            var isPending = _pending.TryGetValue(ask.ShardId, out var pending) && pending.Shard.Equals(ask.Shard);
            var stored = found is null || found.Contains(_prefix + ask.EntityId) ||
                         (_shards.TryGetValue(ask.ShardId, out var known) && known.Stored.Contains(ask.EntityId)) ||
                         (isPending && pending.Marked.Contains(ask.EntityId));
            if (!stored && isPending)
            {
                pending.Empty.Add(ask.EntityId);
            }

            replyTo.Tell(Answer(ask, stored));
        }

        StartPointQuery();
    }

    /// <summary>
    /// Reads every stored id of the region once for all shards that arrived before the read started; from then on
    /// their entities are answered from memory. Shards arriving during a read are covered by the following one.
    /// </summary>
    private void StartScan()
    {
        if (_scanning is not null || _pending.Count == 0)
        {
            return;
        }

        _scanning = _pending.Select(p => (p.Key, p.Value.Shard)).ToList();
        _query(CancellationToken.None).PipeTo(
            Self,
            success: ids => new ScanResult(ids, null),
            failure: e => new ScanResult(null, e));
    }

    private void OnScanResult(ScanResult result)
    {
        var scanned = _scanning ?? new List<(string, IActorRef)>();
        _scanning = null;
        if (result.Ids is null)
        {
            _log.Warning("Could not read which {0}* entities are stored ({1}); their entities are looked up one by one meanwhile",
                _prefix, result.Error?.GetBaseException().Message);
            return; // the shards stay pending; the next ask starts another read
        }

        var sets = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (shardId, shard) in scanned)
        {
            if (_pending.TryGetValue(shardId, out var pending) && pending.Shard.Equals(shard))
            {
                sets[shardId] = pending.Marked;
            }
        }

        foreach (var persistenceId in result.Ids)
        {
            var entityId = persistenceId[_prefix.Length..];
            if (sets.TryGetValue(_shardOf(entityId), out var set))
            {
                set.Add(entityId);
            }
        }

        foreach (var (shardId, set) in sets)
        {
            var shard = _pending[shardId].Shard;
            _shards[shardId] = (shard, set);
            _pending.Remove(shardId);
            if (_kept.Enabled)
            {
                Context.Watch(shard); // its kept states end with it
            }
        }

        StartScan();
    }

    private sealed record ScanResult(IReadOnlyList<string>? Ids, Exception? Error);

    private sealed record PointResult(List<(IsStored Ask, IActorRef ReplyTo)> Asks, IReadOnlyList<string>? Found, Exception? Error);
}

/// <summary>Does this entity have anything stored? Answered with <see cref="StoredAnswer"/>.</summary>
/// <param name="Shard">The asking entity's parent, the Shard actor (a new one each time the shard comes to this node).</param>
/// <param name="Peek">Only whether (the client id's registry asks for the entity): the answer names the id and hands out no kept state.</param>
public sealed record IsStored(string EntityId, string ShardId, IActorRef Shard, bool Peek = false) : INoSerializationVerificationNeeded;

/// <param name="State">The entity's state kept when it passivated (<see cref="KeepState"/>): it starts from it without reading storage.</param>
/// <param name="EntityId">The id asked about, in the answer to a <see cref="IsStored.Peek"/>.</param>
public sealed record StoredAnswer(bool Stored, byte[]? State = null, string? EntityId = null) : INoSerializationVerificationNeeded;

/// <summary>
/// A passivating entity's state, serialized once every write of it was stored: kept by the directory (within its
/// bounds) and handed to the entity's next start on this node, while its shard stays here (<see cref="KeptStates"/>).
/// </summary>
public sealed record KeepState(string EntityId, string ShardId, IActorRef Shard, byte[] State) : INoSerializationVerificationNeeded;

/// <summary>The entity is about to write to the journal (sent before its first write).</summary>
public sealed record MarkStored(string EntityId, string ShardId) : INoSerializationVerificationNeeded;

/// <summary>The entity's journal was deleted.</summary>
public sealed record MarkDeleted(string EntityId, string ShardId) : INoSerializationVerificationNeeded;
