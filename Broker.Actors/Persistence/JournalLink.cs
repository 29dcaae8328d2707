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
    private readonly string _prefix;
    private readonly string _entityId;
    private readonly string _shardId;
    // Created on the first write: most entities (every clean session) never write.
    private Queue<(Action? Then, int Events)>? _waiting; // per JournalDone to come: what waits, events stored
    private List<object>? _group; // events gathered while a write is on its way
    private List<Action?>? _groupThens;
    private int _groupBytes;
    private int _writesInFlight;
    private bool _marked; // the directory was told this entity has rows (and no deletion was asked since)
    private bool _storedWithoutJournal; // restored from a kept state: rows exist though the journal is not started
    private long? _knownSequenceNr; // the highest sequence number stored, when the state was just read with it
    private long? _startSequenceNr; // the journal's, when it started (known, or once it read it: StartedAt)
    private long _flushes; // writes sent since the journal started: one sequence number each

    public JournalLink(IActorContext owner, BrokerContext context, IActorRef directory, string prefix, string entityId, string shardId)
    {
        _owner = owner;
        _context = context;
        _directory = directory;
        _prefix = prefix;
        _entityId = entityId;
        _shardId = shardId;
    }

    /// <summary>The journal child, once started.</summary>
    public IActorRef? Journal { get; private set; }

    /// <summary>Events asked to be written and not yet stored (gathered or on their way).</summary>
    public int PendingWrites { get; private set; }

    /// <summary>
    /// What is still to be stored or answered: the events gathered for the next write, and every answer the journal
    /// owes (each write on its way, and each deferral or deletion, which carry no events, so that
    /// <see cref="PendingWrites"/> does not count them), each with what waits for it. Zero: nothing will come back.
    /// </summary>
    public int Owed => (_group?.Count ?? 0) + (_waiting?.Count ?? 0);

    /// <summary>Starts the journal child; with <paramref name="recover"/> it replays what is stored (<see cref="JournalRecovered"/>).</summary>
    public void Start(bool recover)
    {
        if (Journal is not null)
        {
            return;
        }

        Mark();
        _startSequenceNr = _knownSequenceNr;
        Journal = _owner.ActorOf(EntityJournal.Props(_prefix + _entityId, _owner.Self, _context, recover, _knownSequenceNr), "journal");
        _owner.Watch(Journal);
    }

    /// <summary>
    /// The entity has rows but started from a state read without its journal (kept when it passivated, or read by
    /// <see cref="StoredStateReader"/>): the journal starts without replay on the first write or deletion, numbering
    /// after <paramref name="highestSequenceNr"/> when it is known (the read returned it), and otherwise after the
    /// highest sequence number it reads first (rows marked deleted included).
    /// </summary>
    public void StoredWithoutJournal(long? highestSequenceNr = null)
    {
        _storedWithoutJournal = true;
        _knownSequenceNr = highestSequenceNr;
    }

    /// <summary>The journal read where its numbering stands (<see cref="JournalRecovered"/>), before any write of it went.</summary>
    public void StartedAt(long highestSequenceNr) => _startSequenceNr ??= highestSequenceNr;

    /// <summary>
    /// The highest sequence number stored for the entity once every write sent is stored, when known: from the read
    /// its state came from, or from its journal; null when neither told it.
    /// </summary>
    public long? SequenceNr => Journal is null ? _knownSequenceNr : _startSequenceNr + _flushes;

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

    /// <summary>
    /// Journals <paramref name="e"/>; <paramref name="then"/> runs when it is stored. Group commit: while an earlier
    /// write of this entity is on its way to storage, new events gather and go as one <see cref="JournalBatch"/> (one
    /// row) when it is stored, or at once when the group reaches <see cref="MaxGroupEvents"/> events or
    /// <see cref="MaxGroupBytes"/> bytes (<paramref name="bytes"/>: the event's payload size, roughly). An entity
    /// that writes rarely pays nothing; one that writes fast writes rows of many events.
    /// </summary>
    public void Write(object e, Action? then, int bytes = 0)
    {
        Start(recover: false);
        Mark();
        PendingWrites++;
        (_group ??= new()).Add(e);
        (_groupThens ??= new()).Add(then);
        _groupBytes += bytes;
        if (_writesInFlight == 0 || _group.Count >= MaxGroupEvents || _groupBytes >= MaxGroupBytes)
        {
            Flush();
        }
    }

    /// <summary>Events gathered per row at most.</summary>
    public const int MaxGroupEvents = 256;

    /// <summary>Payload bytes gathered per row at most (a larger single event goes alone).</summary>
    public const int MaxGroupBytes = 256 * 1024;

    /// <summary>Sends the gathered events as one write (one event alone as itself).</summary>
    private void Flush()
    {
        if (_group is not { Count: > 0 } || _groupThens is null)
        {
            return;
        }

        var count = _group.Count;
        var written = count == 1 ? _group[0] : new JournalBatch(_group.ToArray());
        Action? then;
        if (_groupThens.Count == 1)
        {
            then = _groupThens[0];
        }
        else
        {
            var thens = _groupThens.ToArray();
            then = () =>
            {
                foreach (var t in thens)
                {
                    t?.Invoke();
                }
            };
        }

        _group.Clear();
        _groupThens.Clear();
        _groupBytes = 0;
        _writesInFlight++;
        _flushes++;
        (_waiting ??= new()).Enqueue((then, count));
        Journal!.Tell(new JournalWrite(written));
    }

    /// <summary>Runs <paramref name="action"/> once every write asked so far is stored (at once if none is pending).</summary>
    public void AfterWrites(Action action)
    {
        if (_group is { Count: > 0 })
        {
            // After the gathered events, which go after every write on its way.
            _groupThens!.Add(action);
            return;
        }

        if (Journal is null || _waiting is not { Count: > 0 })
        {
            action();
            return;
        }

        _waiting.Enqueue((action, 0));
        Journal.Tell(JournalDefer.Instance);
    }

    /// <summary>After every pending write, deletes all events and snapshots, then runs <paramref name="then"/>.</summary>
    public void DeleteAll(Action? then)
    {
        if (Journal is null && _storedWithoutJournal)
        {
            Start(recover: false);
        }

        if (Journal is null)
        {
            then?.Invoke();
            return;
        }

        Flush();
        _marked = false;
        (_waiting ??= new()).Enqueue((() =>
        {
            if (!_marked)
            {
                // Nothing was written after the deletion was asked: the entity has no rows now.
                _directory.Tell(new MarkDeleted(_entityId, _shardId));
            }

            then?.Invoke();
        }, 0));
        Journal.Tell(JournalDeleteAll.Instance);
    }

    /// <summary>Saves a snapshot; call only while no write is pending (<see cref="PendingWrites"/> 0: nothing gathered either).</summary>
    public void Snapshot(object snapshot) => Journal?.Tell(new JournalSnapshot(snapshot));

    /// <summary>
    /// Handles one <see cref="JournalDone"/>: runs what waited for it, then sends what gathered meanwhile; returns the
    /// number of events it stored (0 for a deferral or a deletion).
    /// </summary>
    public int Answered()
    {
        var (then, events) = _waiting!.Dequeue();
        PendingWrites -= events;

        // What this write's callbacks write gathers (the write still counts as on its way), and goes as one row next.
        then?.Invoke();
        if (events > 0)
        {
            _writesInFlight--;
        }

        if (_writesInFlight == 0)
        {
            Flush();
        }

        return events;
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

    /// <summary>
    /// Another actor writes the entity's journal from now on (its state handed over with <see cref="SequenceNr"/>):
    /// the journal child stops, unwatched, with nothing pending. The link is not used again.
    /// </summary>
    public void Release()
    {
        if (Journal is { } journal)
        {
            _owner.Unwatch(journal);
            _owner.Stop(journal);
            Journal = null;
        }
    }

    /// <summary>Asks the directory whether this entity has anything stored (answered with <see cref="StoredAnswer"/>).</summary>
    public void AskStored() => _directory.Tell(new IsStored(_entityId, _shardId, _owner.Parent));
}
