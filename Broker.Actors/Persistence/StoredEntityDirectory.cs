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
///                                                      └ no ─► one query for all shards waiting ─► answer them all
/// </code>
/// A failed query answers "stored" (the entity then recovers through the journal, which reports the same failure)
/// and is not cached.
/// </summary>
public sealed class StoredEntityDirectory : ReceiveActor
{
    private readonly Func<string, string> _shardOf;
    private readonly Func<CancellationToken, Task<IReadOnlyList<string>>> _query;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, (IActorRef Shard, HashSet<string> Stored)> _shards = new(StringComparer.Ordinal);
    private readonly List<(IsStored Ask, IActorRef ReplyTo)> _waiting = new();
    private readonly string _prefix;
    private List<(IsStored Ask, IActorRef ReplyTo)>? _inQuery;

    /// <param name="prefix">The persistence id prefix of the region's entities ("session-", "topic-").</param>
    /// <param name="shardOf">The region's shard of an entity id.</param>
    /// <param name="query">Reads the persistence ids with the prefix that have live rows.</param>
    public StoredEntityDirectory(string prefix, Func<string, string> shardOf, Func<CancellationToken, Task<IReadOnlyList<string>>> query)
    {
        _prefix = prefix;
        _shardOf = shardOf;
        _query = query;

        Receive<IsStored>(ask =>
        {
            if (_shards.TryGetValue(ask.ShardId, out var known))
            {
                if (known.Shard.Equals(ask.Shard))
                {
                    Sender.Tell(new StoredAnswer(known.Stored.Contains(ask.EntityId)));
                    return;
                }

                _shards.Remove(ask.ShardId); // the shard left this node and came back: read it again
            }

            _waiting.Add((ask, Sender));
            StartQuery();
        });
        Receive<MarkStored>(s =>
        {
            if (_shards.TryGetValue(s.ShardId, out var known))
            {
                known.Stored.Add(s.EntityId);
            }
        });
        Receive<MarkDeleted>(s =>
        {
            if (_shards.TryGetValue(s.ShardId, out var known))
            {
                known.Stored.Remove(s.EntityId);
            }
        });
        Receive<QueryResult>(OnQueryResult);
    }

    public static Props Props(string prefix, Func<string, string> shardOf, StorageJanitor janitor) =>
        Akka.Actor.Props.Create(() => new StoredEntityDirectory(prefix, shardOf, ct => janitor.LiveIdsWithPrefixAsync(prefix, ct)));

    private void StartQuery()
    {
        // A query that started before an ask arrived may predate its shard's arrival here: such asks wait for the
        // next one. Asks that arrive during a query are served together by the following query.
        if (_inQuery is not null || _waiting.Count == 0)
        {
            return;
        }

        _inQuery = new List<(IsStored, IActorRef)>(_waiting);
        _waiting.Clear();
        _query(CancellationToken.None).PipeTo(
            Self,
            success: ids => new QueryResult(ids, null),
            failure: e => new QueryResult(null, e));
    }

    private void OnQueryResult(QueryResult result)
    {
        var served = _inQuery ?? new List<(IsStored, IActorRef)>();
        _inQuery = null;
        if (result.Ids is null)
        {
            _log.Warning("Could not read which {0}* entities are stored ({1}); {2} of them recover through the journal",
                _prefix, result.Error?.GetBaseException().Message, served.Count);
            foreach (var (_, replyTo) in served)
            {
                replyTo.Tell(new StoredAnswer(true));
            }
        }
        else
        {
            var wanted = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (ask, _) in served)
            {
                wanted.Add(ask.ShardId);
                _shards[ask.ShardId] = (ask.Shard, new HashSet<string>(StringComparer.Ordinal));
            }

            foreach (var persistenceId in result.Ids)
            {
                var entityId = persistenceId[_prefix.Length..];
                var shard = _shardOf(entityId);
                if (wanted.Contains(shard))
                {
                    _shards[shard].Stored.Add(entityId);
                }
            }

            foreach (var (ask, replyTo) in served)
            {
                replyTo.Tell(new StoredAnswer(_shards[ask.ShardId].Stored.Contains(ask.EntityId)));
            }
        }

        StartQuery();
    }

    private sealed record QueryResult(IReadOnlyList<string>? Ids, Exception? Error);
}

/// <summary>Does this entity have anything stored? Answered with <see cref="StoredAnswer"/>.</summary>
/// <param name="Shard">The asking entity's parent, the Shard actor (a new one each time the shard comes to this node).</param>
public sealed record IsStored(string EntityId, string ShardId, IActorRef Shard) : INoSerializationVerificationNeeded;

public sealed record StoredAnswer(bool Stored) : INoSerializationVerificationNeeded;

/// <summary>The entity is about to write to the journal (sent before its first write).</summary>
public sealed record MarkStored(string EntityId, string ShardId) : INoSerializationVerificationNeeded;

/// <summary>The entity's journal was deleted.</summary>
public sealed record MarkDeleted(string EntityId, string ShardId) : INoSerializationVerificationNeeded;
