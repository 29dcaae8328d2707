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
/// <see cref="JournalDone"/> in the order it received them, each once every earlier write is stored (PersistAsync
/// keeps that order), so the entity runs the visible effect of an event (a PUBACK, a PUBLISH) only once it is
/// durable. If a write or the recovery fails the journal stops; the entity sees it terminate and stops too, and the
/// next message to it recovers from what was stored.
/// </para>
/// <code>
///   entity ──JournalWrite(e)──► journal ──PersistAsync──► SQL
///   entity ◄──JournalDone────── journal ◄──stored───────── SQL
/// </code>
/// </summary>
public sealed class EntityJournal : ReceivePersistentActor
{
    private readonly IActorRef _entity;
    private readonly BrokerContext _context;
    private readonly bool _recover;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<object> _recovered = new();
    private readonly Queue<(long After, Action Action)> _afterWrites = new();
    private readonly Queue<long> _writeStarted = new(); // Stopwatch timestamps of writes in flight, for the latency metric
    private object? _snapshot;
    private long _issued;
    private long _completed;

    public EntityJournal(string persistenceId, IActorRef entity, BrokerContext context, bool recover)
    {
        _entity = entity;
        _context = context;
        _recover = recover;
        PersistenceId = persistenceId;

        Recover<SnapshotOffer>(o =>
        {
            _snapshot = o.Snapshot;
            _recovered.Clear();
        });
        Recover<RecoveryCompleted>(_ =>
        {
            _entity.Tell(new JournalRecovered(_snapshot, _recovered.ToArray()));
            _snapshot = null;
            _recovered.Clear();
        });
        Recover<JournalBatch>(b => _recovered.AddRange(b.Events));
        Recover<object>(e => _recovered.Add(e));

        Command<JournalWrite>(w =>
        {
            _issued++;
            _writeStarted.Enqueue(System.Diagnostics.Stopwatch.GetTimestamp());
            PersistAsync(w.Event, Written);
        });
        Command<JournalDefer>(_ => AfterWrites(() => _entity.Tell(JournalDone.Instance)));
        Command<JournalDeleteAll>(_ => AfterWrites(() =>
        {
            // After every earlier write: LastSequenceNr now covers them all.
            DeleteMessages(LastSequenceNr);
            DeleteSnapshots(SnapshotSelectionCriteria.Latest);
            _entity.Tell(JournalDone.Instance);
        }));
        Command<JournalSnapshot>(s => SaveSnapshot(s.Snapshot));
        Command<SaveSnapshotSuccess>(s =>
        {
            // The snapshot holds everything up to its sequence number: older events and snapshots can go.
            DeleteMessages(s.Metadata.SequenceNr);
            DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1));
        });
        Command<SaveSnapshotFailure>(f => _log.Warning("Snapshot of {0} failed: {1}", PersistenceId, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(f => _log.Warning("Could not delete journal of {0}: {1}", PersistenceId, f.Cause.Message));
    }

    public override string PersistenceId { get; }

    /// <summary>
    /// An entity the directory knows has nothing stored skips loading snapshots and events; Akka still reads the
    /// highest sequence number, so numbering continues after rows an earlier life left marked deleted.
    /// </summary>
    public override Recovery Recovery => _recover ? Recovery.Default : Recovery.None;

    public static Props Props(string persistenceId, IActorRef entity, BrokerContext context, bool recover) =>
        FactoryProps.Of(() => new EntityJournal(persistenceId, entity, context, recover));

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // Logged by Akka with the event type and persistence id; counted here. This actor stops; nothing that
        // depended on the event was confirmed, since its JournalDone never went out.
        _context.Metrics.StorageFailure();
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _context.Metrics.StorageFailure();
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>
    /// Runs <paramref name="action"/> once every write issued so far is stored. Not DeferAsync: a deferral with no
    /// write in its batch reaches Akka.Persistence.Sql as an empty write, which throws and opens the journal's
    /// circuit breaker for every entity of the node.
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

    private void Written(object e)
    {
        // PersistAsync callbacks run in write order.
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

/// <summary>What recovery found: the latest snapshot (if any) and the events after it, in order.</summary>
public sealed record JournalRecovered(object? Snapshot, IReadOnlyList<object> Events) : INoSerializationVerificationNeeded;
