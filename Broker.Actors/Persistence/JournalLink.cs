using Akka.Actor;
using Broker.Cluster;

namespace Broker.Persistence;

/// <summary>
/// The entity's side of its <see cref="EntityJournal"/> child: starts it when first needed (telling this node's
/// <see cref="StoredEntityDirectory"/> before the first write), and keeps, in request order, what waits for each of
/// the journal's <see cref="JournalDone"/> answers. Owned by one actor and used on its thread only.
/// </summary>
public sealed class JournalLink
{
    private readonly IActorContext _owner;
    private readonly BrokerContext _context;
    private readonly IActorRef _directory;
    private readonly string _persistenceId;
    private readonly string _entityId;
    private readonly string _shardId;
    private readonly Queue<(Action? Then, bool IsWrite)> _waiting = new();
    private bool _marked; // the directory was told this entity has rows (and no deletion was asked since)

    public JournalLink(IActorContext owner, BrokerContext context, IActorRef directory, string prefix, string entityId, string shardId)
    {
        _owner = owner;
        _context = context;
        _directory = directory;
        _persistenceId = prefix + entityId;
        _entityId = entityId;
        _shardId = shardId;
    }

    /// <summary>The journal child, once started.</summary>
    public IActorRef? Journal { get; private set; }

    /// <summary>Writes asked and not yet stored.</summary>
    public int PendingWrites { get; private set; }

    /// <summary>Starts the journal child; with <paramref name="recover"/> it replays what is stored (<see cref="JournalRecovered"/>).</summary>
    public void Start(bool recover)
    {
        if (Journal is not null)
        {
            return;
        }

        Mark();
        Journal = _owner.ActorOf(EntityJournal.Props(_persistenceId, _owner.Self, _context, recover), "journal");
        _owner.Watch(Journal);
    }

    /// <summary>
    /// Handles the directory's <see cref="StoredAnswer"/>: when the entity has rows, starts the journal with recovery
    /// (a <see cref="JournalRecovered"/> follows) and returns true; otherwise the entity starts empty.
    /// </summary>
    public bool RecoverIfStored(StoredAnswer answer)
    {
        if (answer.Stored)
        {
            Start(recover: true);
        }

        return answer.Stored;
    }

    /// <summary>Journals <paramref name="e"/>; <paramref name="then"/> runs when it is stored.</summary>
    public void Write(object e, Action? then)
    {
        Start(recover: false);
        Mark();
        PendingWrites++;
        _waiting.Enqueue((then, true));
        Journal!.Tell(new JournalWrite(e));
    }

    /// <summary>Runs <paramref name="action"/> once every write asked so far is stored (at once if none is pending).</summary>
    public void AfterWrites(Action action)
    {
        if (Journal is null || _waiting.Count == 0)
        {
            action();
            return;
        }

        _waiting.Enqueue((action, false));
        Journal.Tell(JournalDefer.Instance);
    }

    /// <summary>After every pending write, deletes all events and snapshots, then runs <paramref name="then"/>.</summary>
    public void DeleteAll(Action? then)
    {
        if (Journal is null)
        {
            then?.Invoke();
            return;
        }

        _marked = false;
        _waiting.Enqueue((() =>
        {
            if (!_marked)
            {
                // Nothing was written after the deletion was asked: the entity has no rows now.
                _directory.Tell(new MarkDeleted(_entityId, _shardId));
            }

            then?.Invoke();
        }, false));
        Journal.Tell(JournalDeleteAll.Instance);
    }

    /// <summary>Saves a snapshot; call only while no write is pending.</summary>
    public void Snapshot(object snapshot) => Journal?.Tell(new JournalSnapshot(snapshot));

    /// <summary>Handles one <see cref="JournalDone"/>: runs what waited for it; true when it answered a write.</summary>
    public bool Answered()
    {
        var (then, isWrite) = _waiting.Dequeue();
        if (isWrite)
        {
            PendingWrites--;
        }

        then?.Invoke();
        return isWrite;
    }

    private void Mark()
    {
        if (!_marked)
        {
            _marked = true;
            _directory.Tell(new MarkStored(_entityId, _shardId));
        }
    }

    public bool IsJournal(IActorRef actor) => actor.Equals(Journal);

    /// <summary>While the entity waits (starting, recovering, fetching): its journal's stop ends it; anything else waits in the stash.</summary>
    public void StashUnlessStopped(object message, IStash stash)
    {
        if (message is Terminated t && IsJournal(t.ActorRef))
        {
            Stopped();
        }
        else
        {
            stash.Stash();
        }
    }

    /// <summary>
    /// The journal stopped (a write or the recovery failed; logged and counted by the journal): nothing waiting on it
    /// was confirmed. The owner stops too, and the next message to it recovers what was stored. The directory needs
    /// no news: it heard <see cref="MarkStored"/> before the entity's first write, so it already counts the entity as
    /// stored even if that write failed halfway. (It used to forget the whole shard here; the next entity of that
    /// shard then had to read the journal, which fails for as long as storage is down, so a clean session sharing a
    /// shard with a failed persistent one was refused, and a re-read racing a concurrent first write could miss it.)
    /// </summary>
    public void Stopped() => _owner.Stop(_owner.Self);

    /// <summary>Asks the directory whether this entity has anything stored (answered with <see cref="StoredAnswer"/>).</summary>
    public void AskStored() => _directory.Tell(new IsStored(_entityId, _shardId, _owner.Parent));
}
