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
/// stay until the entity ends. This actor lives as long as the node, so the deletion follows every snapshot stored
/// while the node runs. Nothing depends on the deletion for correctness: recovery starts from the latest snapshot.
/// </para>
/// </summary>
public sealed class SnapshotTrimmer : UntypedActor
{
    public const string Name = "snapshot-trimmer";

    private readonly IActorRef _journal;
    private readonly IActorRef _snapshots;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public SnapshotTrimmer()
    {
        var persistence = Akka.Persistence.Persistence.Instance.Apply(Context.System);
        _journal = persistence.JournalFor(null);
        _snapshots = persistence.SnapshotStoreFor(null);
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new SnapshotTrimmer());

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SaveSnapshotSuccess s:
                // The snapshot holds everything up to its sequence number: older events and snapshots can go.
                _journal.Tell(new DeleteMessagesTo(s.Metadata.PersistenceId, s.Metadata.SequenceNr, Self));
                _snapshots.Tell(new DeleteSnapshots(s.Metadata.PersistenceId, new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
                break;
            case SaveSnapshotFailure f:
                _log.Warning("Snapshot of {0} failed: {1}", f.Metadata.PersistenceId, f.Cause.Message);
                break;
            case DeleteMessagesFailure f:
                _log.Warning("Could not delete journal up to {0}: {1}", f.ToSequenceNr, f.Cause.Message);
                break;
            case DeleteMessagesSuccess or DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
