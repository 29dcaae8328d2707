using System.Buffers.Binary;
using Akka.Actor;
using Akka.Serialization;
using Broker.Persistence;

namespace Broker.Sessions;

/// <summary>
/// A passivating session leaves its state with the node's session directory (as the snapshot it would store,
/// serialized: a few hundred bytes for a session with a few subscriptions and nothing queued), so that its next start
/// on this node, a resume most often, runs from it instead of reading its snapshot and events back from storage.
/// <code>
///   passivate ─► every write stored ─► KeepState(sequence number, snapshot bytes) ─► directory (bounded; per shard incarnation)
///   woken ─► IsStored ─► StoredAnswer(stored, bytes) ─► Restore(snapshot) as after a recovery; journal not started
///                                                      (started on the first write, numbering after the kept
///                                                      sequence number, or after the one it reads when none was known)
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
            _delegate is not null || _away is not null || _ending || _context.Fenced || _journalLink is not { PendingWrites: 0 } ||
            _inFlow?.PendingCount > 0 || _fetching is not null)
        {
            return;
        }

        var snapshot = SnapshotSerializer.ToBinary(TakeSnapshot());
        if (snapshot.Length <= _context.Options.Sessions.PassivatedStateBytes)
        {
            _context.SessionDirectory.Tell(new KeepState(_clientId, _shardId, Context.Parent, WithSequenceNr(snapshot)));
        }
    }

    /// <summary>The state to hand on, every write stored: what <see cref="RestoreKept"/> starts from.</summary>
    private byte[] StateToHandOn() => WithSequenceNr(SnapshotSerializer.ToBinary(TakeSnapshot()));

    /// <summary>
    /// The highest sequence number stored (-1: unknown) ahead of the snapshot, so that the journal, if it starts again,
    /// numbers after it without reading it.
    /// </summary>
    private byte[] WithSequenceNr(byte[] snapshot)
    {
        var kept = new byte[sizeof(long) + snapshot.Length];
        BinaryPrimitives.WriteInt64LittleEndian(kept, _journalLink?.SequenceNr ?? -1);
        snapshot.CopyTo(kept, sizeof(long));
        return kept;
    }

    /// <summary>Starts from the state kept at the last passivation, as a recovery from that snapshot alone would.</summary>
    private void RestoreKept(byte[] state)
    {
        if (!_handedOver)
        {
            _context.Metrics.SessionStarted(fromKept: true); // not a start: a session handed over between its entity and its connection's node
        }

        var sequenceNr = BinaryPrimitives.ReadInt64LittleEndian(state);
        _journal.StoredWithoutJournal(sequenceNr >= 0 ? sequenceNr : null);
        var snapshot = (SessionSnapshot)SnapshotSerializer.FromBinary(state.AsSpan(sizeof(long)).ToArray(), SnapshotManifest);
        Recovered(snapshot, []);
    }
}
