using Akka.Actor;
using Akka.Serialization;
using Broker.Persistence;

namespace Broker.Sessions;

/// <summary>
/// A passivating session leaves its state with the node's session directory (as the snapshot it would store,
/// serialized: a few hundred bytes for a session with a few subscriptions and nothing queued), so that its next start
/// on this node, a resume most often, runs from it instead of reading its snapshot and events back from storage.
/// <code>
///   passivate ─► every write stored ─► KeepState(snapshot bytes) ─► directory (bounded; per shard incarnation)
///   woken ─► IsStored ─► StoredAnswer(stored, bytes) ─► Restore(snapshot) as after a recovery; journal not started
///                                                      (started on the first write, where Akka reads the sequence number)
/// </code>
/// Why the state is exact and never stale: <see cref="KeptStates"/>. A session whose state is over the bound, or
/// that stops any other way (hand-off with holds pending, a failed write, its end), keeps nothing and recovers from
/// storage.
/// </summary>
public sealed partial class SessionEntity
{
    private const string SnapshotManifest = "se-snap2";

    /// <summary>The state as a snapshot: exactly the journaled state while no write is pending.</summary>
    private SessionSnapshot TakeSnapshot() => new(
        _expirySeconds, _will, _subscriptions.ToList(), _queue.Items.ToList(), _inflight.Entries.ToList(), _inFlow?.Held.ToList() ?? [], _detachedAtMs,
        _inFlow?.Pending.ToList() ?? [], _inFlow?.OriginStream ?? 0, _inFlow?.OriginSeq ?? 0, _seen?.ToList() ?? [], _out.NextSeq, _out.SentBelow);

    private SerializerWithStringManifest SnapshotSerializer =>
        (SerializerWithStringManifest)Context.System.Serialization.FindSerializerForType(typeof(SessionSnapshot));

    /// <summary>Called when the entity stops after passivation or hand-off, every write stored: leave the state behind.</summary>
    private void KeepStateOnStop()
    {
        if (_context.Options.Sessions.PassivatedStateBytes <= 0 || _isLive || !_persistent || !_journaled || Connected ||
            _delegate is not null || _ending || _context.Fenced || _journalLink is not { PendingWrites: 0 } ||
            _inFlow?.PendingCount > 0 || _fetching is not null)
        {
            return;
        }

        var bytes = SnapshotSerializer.ToBinary(TakeSnapshot());
        if (bytes.Length <= _context.Options.Sessions.PassivatedStateBytes)
        {
            _context.SessionDirectory.Tell(new KeepState(_clientId, _shardId, Context.Parent, bytes));
        }
    }

    /// <summary>Starts from the state kept at the last passivation, as a recovery from that snapshot alone would.</summary>
    private void RestoreKept(byte[] state)
    {
        _context.Metrics.SessionStarted(fromKept: true);
        _journal.StoredWithoutJournal();
        var snapshot = (SessionSnapshot)SnapshotSerializer.FromBinary(state, SnapshotManifest);
        Recovered(snapshot, []);
    }
}
