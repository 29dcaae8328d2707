using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Broker.Cluster;

namespace Broker.Persistence;

/// <summary>
/// The journal of one entity (a session or a topic): a child of the entity, which owns the state. It exists only
/// for entities that have something stored (or are about to), so that a clean session or a topic nobody subscribed
/// to never touches storage: no recovery query when it starts, no events (DESIGN.md "Storage only where a promise
/// needs it"). Which entities have something stored is known per node by <see cref="StoredEntityDirectory"/>.
/// <para>
/// The entity sends it writes, deferrals and deletions; the journal answers every one of them with
/// <see cref="JournalDone"/> in the order it received them, each once every earlier write is stored, so the entity
/// runs the visible effect of an event (a PUBACK, a PUBLISH) only once it is durable. If a write or the recovery
/// fails the journal stops; the entity sees it terminate and stops too, and the next message to it recovers from
/// what was stored.
/// </para>
/// <para>
/// It speaks the journal plugin's own protocol (WriteMessages of AtomicWrites, DeleteMessagesTo; SaveSnapshot and
/// DeleteSnapshots to the snapshot store, which confirms a snapshot to <see cref="SnapshotTrimmer"/>) and numbers
/// the events itself, one write on its way at a time, as Akka.Persistence's Eventsourced does for PersistAsync.
/// Numbering must continue after the highest sequence number stored for the persistence id, rows marked deleted
/// included. When the entity knows that number (its state was just read by <see cref="StoredStateReader"/>, whose
/// statement also returns it) the journal starts at once; when it only needs the number, it asks that reader, which
/// reads it for many journals in one statement; when the entity asked for recovery (or batched reads are off), an
/// <see cref="EntityRecovery"/> child (Akka's recovery: its permit, snapshot load, replay, highest sequence number)
/// reads it first, replaying what is stored.
/// </para>
/// <code>
///   start ── known sequence number? ── yes ─────────────────────────────► ready
///                                   ├─ no, no replay ─► StoredStateReader (batched) ─► JournalRecovered ─► ready
///                                   └─ no, replay ─► EntityRecovery (Akka) ─► JournalRecovered ─► ready
///   entity ──JournalWrite(e)──► journal ──WriteMessages(n+1)──► plugin ──► SQL
///   entity ◄──JournalDone────── journal ◄──WriteMessageSuccess── plugin ◄── stored
/// </code>
/// </summary>
public sealed class EntityJournal : UntypedActor
{
    private static int _instances;
    private readonly string _persistenceId;
    private readonly IActorRef _entity;
    private readonly BrokerContext _context;
    private readonly bool _recover;
    private readonly IActorRef _plugin;
    private readonly IActorRef _snapshots;
    private readonly int _instanceId = Interlocked.Increment(ref _instances);
    private readonly string _writerGuid = Guid.NewGuid().ToString();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Queue<(long After, Action Action)> _afterWrites = new();
    private readonly Queue<long> _writeStarted = new(); // Stopwatch timestamps of writes issued, for the latency metric
    private List<IPersistentEnvelope>? _batch; // writes waiting for the one on its way
    private Queue<object>? _held; // what the entity sent while the sequence number was being read
    private IActorRef? _recovery;
    private bool _writing;
    private long _sequenceNr; // the highest sequence number issued
    private long _issued;
    private long _completed;

    public EntityJournal(string persistenceId, IActorRef entity, BrokerContext context, bool recover, long? knownSequenceNr)
    {
        _persistenceId = persistenceId;
        _entity = entity;
        _context = context;
        _recover = recover;
        var persistence = Akka.Persistence.Persistence.Instance.Apply(Context.System);
        _plugin = persistence.JournalFor(null);
        _snapshots = persistence.SnapshotStoreFor(null);
        if (!recover && knownSequenceNr is { } known)
        {
            _sequenceNr = known;
        }
        else if (!recover && !context.StoredStateReader.IsNobody())
        {
            // Only the numbering is needed: asked of the node's reader, which reads it for many journals starting
            // together in one statement (the first subscription to each of many new topics, many new persistent
            // sessions), instead of Akka's recovery per journal.
            _held = new();
            context.StoredStateReader.Tell(new ReadStoredState(persistenceId, NumberOnly: true));
        }
        else
        {
            _held = new();
            _recovery = Context.ActorOf(EntityRecovery.Props(persistenceId, recover, context), "recovery");
            Context.Watch(_recovery);
        }
    }

    public static Props Props(string persistenceId, IActorRef entity, BrokerContext context, bool recover, long? knownSequenceNr) =>
        // On the lean mailbox: one journal per topic with a stored subscriber and per stored session, so as many as
        // devices with their own command topic; Akka's default queue alone is about 1 KB while idle.
        FactoryProps.Of((persistenceId, entity, context, recover, knownSequenceNr),
            static s => new EntityJournal(s.persistenceId, s.entity, s.context, s.recover, s.knownSequenceNr), FactoryProps.Lean);

    protected override void OnReceive(object message)
    {
        if (_held is not null)
        {
            Starting(message);
            return;
        }

        switch (message)
        {
            case JournalWrite w:
                _issued++;
                _writeStarted.Enqueue(System.Diagnostics.Stopwatch.GetTimestamp());
                (_batch ??= new()).Add(new AtomicWrite(new Persistent(w.Event, ++_sequenceNr, _persistenceId, writerGuid: _writerGuid)));
                Flush();
                break;
            case WriteMessageSuccess s when s.ActorInstanceId == _instanceId:
                Written();
                break;
            case WriteMessagesSuccessful:
                _writing = false;
                Flush();
                break;
            case WriteMessageFailure f when f.ActorInstanceId == _instanceId:
                Failed(f.Cause, f.Persistent, "Failed to persist");
                break;
            case WriteMessageRejected r when r.ActorInstanceId == _instanceId:
                // Not stored (a serialization failure): nothing that depends on it may be confirmed, so as a failure.
                Failed(r.Cause, r.Persistent, "Rejected to persist");
                break;
            case WriteMessagesFailed:
                break; // each write of the batch is answered with its WriteMessageFailure
            case JournalDefer:
                AfterWrites(() => _entity.Tell(JournalDone.Instance));
                break;
            case JournalDeleteAll:
                AfterWrites(() =>
                {
                    // After every earlier write: the sequence number now covers them all. The plugin keeps the
                    // highest row (marked deleted), so numbering continues after it.
                    _plugin.Tell(new DeleteMessagesTo(_persistenceId, _sequenceNr, Self));
                    _snapshots.Tell(new DeleteSnapshots(_persistenceId, SnapshotSelectionCriteria.Latest));
                    _entity.Tell(JournalDone.Instance);
                });
                break;
            case JournalSnapshot s:
                // Answered to the node's SnapshotTrimmer, which deletes what the snapshot covers even if this
                // journal stops before the snapshot store confirms it.
                _snapshots.Tell(new SaveSnapshot(new SnapshotMetadata(_persistenceId, _sequenceNr, DateTime.UtcNow), s.Snapshot),
                    _context.SnapshotTrimmer);
                break;
            case DeleteMessagesFailure f:
                _log.Warning("Could not delete journal of {0}: {1}", _persistenceId, f.Cause.Message);
                break;
            case DeleteMessagesSuccess or DeleteSnapshotsSuccess or DeleteSnapshotsFailure or Terminated:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>While the sequence number is read: what the entity sends waits, in order.</summary>
    private void Starting(object message)
    {
        switch (message)
        {
            case EntityRecovery.Recovered r when Sender.Equals(_recovery):
                Context.Unwatch(_recovery);
                Context.Stop(_recovery);
                _recovery = null;
                Started(_recover
                    ? new JournalRecovered(r.Snapshot, r.Events, r.HighestSequenceNr)
                    : new JournalRecovered(null, [], r.HighestSequenceNr));
                break;
            case StoredState s when _recovery is null: // asked of the reader (no recovery child)
                if (s.Error is not null)
                {
                    // As a failed recovery: nothing was written, and the entity stops with this journal.
                    _context.Metrics.StorageFailure();
                    _log.Error(s.Error, "Could not read the highest sequence number of {0}", _persistenceId);
                    Context.Stop(Self);
                    return;
                }

                Started(new JournalRecovered(null, [], s.HighestSequenceNr));
                break;
            case Terminated t when t.ActorRef.Equals(_recovery):
                // The recovery failed (logged by Akka, counted by EntityRecovery): stop, and the entity with us.
                Context.Stop(Self);
                break;
            default:
                _held!.Enqueue(message);
                break;
        }
    }

    /// <summary>The numbering (and what was replayed) is known: tells the entity, then handles what waited, in order.</summary>
    private void Started(JournalRecovered recovered)
    {
        _sequenceNr = recovered.HighestSequenceNr;
        _entity.Tell(recovered);
        var held = _held!;
        _held = null;
        while (held.Count > 0)
        {
            OnReceive(held.Dequeue());
        }
    }

    /// <summary>Sends the writes gathered while none was on its way, as one request (one AtomicWrite each).</summary>
    private void Flush()
    {
        if (_writing || _batch is not { Count: > 0 })
        {
            return;
        }

        _writing = true;
        var batch = _batch;
        _batch = null;
        _plugin.Tell(new WriteMessages(batch, Self, _instanceId));
    }

    private void Failed(Exception cause, IPersistentRepresentation persistent, string what)
    {
        // Nothing that depended on the event was confirmed, since its JournalDone never went out. The entity sees
        // this actor stop and stops too.
        _context.Metrics.StorageFailure();
        _log.Error(cause, "{0} event type [{1}] with sequence number [{2}] for persistenceId [{3}].",
            what, persistent.Payload?.GetType().Name ?? "null", persistent.SequenceNr, _persistenceId);
        Context.Stop(Self);
    }

    /// <summary>
    /// Runs <paramref name="action"/> once every write issued so far is stored (at once when none is on its way).
    /// </summary>
    private void AfterWrites(Action action)
    {
        if (_completed == _issued)
        {
            action();
            return;
        }

        _afterWrites.Enqueue((_issued, action));
    }

    private void Written()
    {
        // The plugin answers the writes of one request in order, and requests one at a time.
        _context.Metrics.PersistLatency.RecordSince(_writeStarted.Dequeue());
        _completed++;
        _entity.Tell(JournalDone.Instance);
        while (_afterWrites.Count > 0 && _afterWrites.Peek().After <= _completed)
        {
            _afterWrites.Dequeue().Action();
        }
    }
}

/// <summary>
/// Akka.Persistence's recovery of one persistence id, for an <see cref="EntityJournal"/> that does not know where
/// its numbering stands: with <c>replay</c> the latest snapshot and the events after it, without it nothing but the
/// highest sequence number (rows marked deleted included). It reports to its parent once and writes nothing.
/// </summary>
public sealed class EntityRecovery : ReceivePersistentActor
{
    private readonly BrokerContext _context;
    private readonly bool _replay;
    private readonly List<object> _events = new();
    private object? _snapshot;

    public EntityRecovery(string persistenceId, bool replay, BrokerContext context)
    {
        PersistenceId = persistenceId;
        _replay = replay;
        _context = context;
        Recover<SnapshotOffer>(o =>
        {
            _snapshot = o.Snapshot;
            _events.Clear();
        });
        Recover<RecoveryCompleted>(_ => Context.Parent.Tell(new Recovered(_snapshot, _events.ToArray(), LastSequenceNr)));
        Recover<JournalBatch>(b => _events.AddRange(b.Events));
        Recover<object>(e => _events.Add(e));
        CommandAny(_ => { });
    }

    public override string PersistenceId { get; }

    /// <summary>Without replay Akka still reads the highest sequence number, so numbering continues after rows an earlier life left.</summary>
    public override Recovery Recovery => _replay ? Recovery.Default : Recovery.None;

    public static Props Props(string persistenceId, bool replay, BrokerContext context) =>
        FactoryProps.Of(() => new EntityRecovery(persistenceId, replay, context));

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _context.Metrics.StorageFailure();
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>What the recovery found, and the highest sequence number stored.</summary>
    public sealed record Recovered(object? Snapshot, IReadOnlyList<object> Events, long HighestSequenceNr) : INoSerializationVerificationNeeded;
}

/// <summary>
/// Events of one entity written as one row (<see cref="JournalLink"/>'s group commit); recovery replays them one by
/// one, in order, so the entity never sees the batch.
/// </summary>
public sealed record JournalBatch(IReadOnlyList<object> Events) : Serialization.IBrokerSerializable;

/// <summary>Journal this event; answer <see cref="JournalDone"/> once it is stored.</summary>
public sealed record JournalWrite(object Event) : INoSerializationVerificationNeeded;

/// <summary>Answer <see cref="JournalDone"/> once every earlier write is stored.</summary>
public sealed class JournalDefer : INoSerializationVerificationNeeded
{
    public static readonly JournalDefer Instance = new();
}

/// <summary>Once every earlier write is stored, delete all events and snapshots; then answer <see cref="JournalDone"/>.</summary>
public sealed class JournalDeleteAll : INoSerializationVerificationNeeded
{
    public static readonly JournalDeleteAll Instance = new();
}

/// <summary>Save this snapshot (sent only while no write is pending), then delete what it covers.</summary>
public sealed record JournalSnapshot(object Snapshot) : INoSerializationVerificationNeeded;

/// <summary>One write, deferral or deletion asked of the journal is done (answers come in request order).</summary>
public sealed class JournalDone : INoSerializationVerificationNeeded
{
    public static readonly JournalDone Instance = new();
}

/// <summary>
/// What recovery found: the latest snapshot (if any) and the events after it, in order (nothing for a journal started
/// without replay), and the highest sequence number stored, after which the journal numbers.
/// </summary>
public sealed record JournalRecovered(object? Snapshot, IReadOnlyList<object> Events, long HighestSequenceNr) : INoSerializationVerificationNeeded;
