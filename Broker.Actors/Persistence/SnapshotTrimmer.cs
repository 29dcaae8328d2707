using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace Broker.Persistence;

/// <summary>
/// Deletes what a stored snapshot covers: the snapshot store answers every entity's <see cref="SaveSnapshot"/> here,
/// one actor per node, and on its confirmation this actor asks the journal plugin to delete the events up to the
/// snapshot's sequence number (the plugin keeps that row, marked deleted, so numbering continues after it) and the
/// snapshot store to delete the older snapshots.
/// <para>
/// Not the entity's journal: an entity may stop (passivate, hand off, end) between asking for a snapshot and its
/// confirmation, and its journal child with it; the confirmation would then reach nobody and the covered rows would
/// stay until the entity ends. This actor lives as long as the node.
/// </para>
/// <para>
/// One deletion per persistence id at a time, the latest asked for next: the plugin's deletion marks rows, then
/// deletes those below the highest marked, in one transaction, and two of them on the same rows at once can deadlock
/// on PostgreSQL (one is rolled back and its rows stay). A failed deletion is tried again, a few times. Nothing
/// depends on the deletion for correctness: recovery starts from the latest snapshot.
/// </para>
/// </summary>
public sealed class SnapshotTrimmer : UntypedActor, IWithTimers
{
    public const string Name = "snapshot-trimmer";
    private const int Attempts = 3;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan DeleteTimeout = TimeSpan.FromSeconds(30);

    private readonly IActorRef _journal;
    private readonly IActorRef _snapshots;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, Trim> _trims = new(StringComparer.Ordinal); // persistence id: its deletion on its way

    public SnapshotTrimmer()
    {
        var persistence = Akka.Persistence.Persistence.Instance.Apply(Context.System);
        _journal = persistence.JournalFor(null);
        _snapshots = persistence.SnapshotStoreFor(null);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props() => Akka.Actor.Props.Create(() => new SnapshotTrimmer());

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SaveSnapshotSuccess s:
                // The snapshot holds everything up to its sequence number: older events and snapshots can go.
                _snapshots.Tell(new DeleteSnapshots(s.Metadata.PersistenceId, new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
                if (_trims.TryGetValue(s.Metadata.PersistenceId, out var running))
                {
                    running.Next = Math.Max(running.Next, s.Metadata.SequenceNr);
                }
                else
                {
                    _trims[s.Metadata.PersistenceId] = new Trim { Next = s.Metadata.SequenceNr };
                    Delete(s.Metadata.PersistenceId);
                }

                break;
            case Deleted d:
                Done(d);
                break;
            case Retry r:
                Delete(r.PersistenceId);
                break;
            case SaveSnapshotFailure f:
                _log.Warning("Snapshot of {0} failed: {1}", f.Metadata.PersistenceId, f.Cause.Message);
                break;
            case DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Delete(string persistenceId)
    {
        var to = _trims[persistenceId].Next;
        _journal.Ask<object>(replyTo => new DeleteMessagesTo(persistenceId, to, replyTo), DeleteTimeout, CancellationToken.None)
            .PipeTo(Self, success: r => new Deleted(persistenceId, to, r as DeleteMessagesFailure is { } f ? f.Cause : null),
                failure: e => new Deleted(persistenceId, to, e));
    }

    private void Done(Deleted d)
    {
        var trim = _trims[d.PersistenceId];
        if (d.Failure is not null)
        {
            _log.Warning("Could not delete the journal of {0} up to {1} (attempt {2} of {3}): {4}",
                d.PersistenceId, d.To, trim.Failures + 1, Attempts, d.Failure.Message);
            if (++trim.Failures < Attempts)
            {
                Timers.StartSingleTimer(d.PersistenceId, new Retry(d.PersistenceId), RetryDelay);
                return;
            }
        }

        trim.Failures = 0;
        if (trim.Next > d.To)
        {
            Delete(d.PersistenceId);
        }
        else
        {
            _trims.Remove(d.PersistenceId);
        }
    }

    private sealed class Trim
    {
        public long Next; // the highest sequence number a stored snapshot covers (the deletion on its way asks up to it or less)
        public int Failures;
    }

    private sealed record Deleted(string PersistenceId, long To, Exception? Failure);

    private sealed record Retry(string PersistenceId);
}
