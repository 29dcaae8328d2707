using Broker.Persistence;

namespace Broker.Sessions;

/// <summary>The session's journal: storing events before their visible effects, snapshots and restoring from one.</summary>
public sealed partial class SessionEntity
{
    // Events, rows and payload bytes since the last snapshot (in SessionStorageState: a clean session stores nothing).
    private int _eventsSinceSnapshot { get => _stored?.EventsSinceSnapshot ?? default; set { if (_stored is not null || value != default) Stored.EventsSinceSnapshot = value; } }

    private int _rowsSinceSnapshot { get => _stored?.RowsSinceSnapshot ?? default; set { if (_stored is not null || value != default) Stored.RowsSinceSnapshot = value; } }

    private long _bytesSinceSnapshot { get => _stored?.BytesSinceSnapshot ?? default; set { if (_stored is not null || value != default) Stored.BytesSinceSnapshot = value; } }

    /// <summary>
    /// Applies the event at once and, for a persistent session, journals it; <paramref name="then"/> (the part the
    /// world can see: a confirmation to a publisher, a packet to the client) runs only once the event is stored.
    /// PersistAsync keeps the entity responsive and lets the journal batch writes of many sessions; callbacks run in
    /// event order. If a write fails the entity stops and recovers from the journal, which then holds exactly what
    /// was confirmed, since nothing was confirmed before its event was stored.
    /// </summary>
    private void Store<TEvent>(TEvent e, Action? then = null)
        where TEvent : ISessionEvent
    {
        if (_context.Fenced)
        {
            // The node may have been replaced (BrokerContext.Fenced): this incarnation changes nothing more, neither
            // in the journal nor for anyone waiting on it, so that it never runs beside its successor.
            return;
        }

        if (_attachRecordPending)
        {
            StoreAttachRecord(e); // before the event, with the state before it
        }

        Apply(e);
        var storedBelow = e is MessageQueued ? _out.NextSeq : -1; // once stored, the message may be sent
        if (_released?.Count > 0)
        {
            // References whose last entry this event removed: released once the removal is stored.
            var released = _released;
            _released = null;
            var after = then;
            then = () =>
            {
                after?.Invoke();
                ReleaseRefs(released);
            };
        }

        if (!_persistent)
        {
            if (storedBelow >= 0)
            {
                _out.StoredBelow = Math.Max(_out.StoredBelow, storedBelow);
            }

            then?.Invoke();
            return;
        }

        if (storedBelow >= 0)
        {
            var after = then;
            then = () =>
            {
                _out.StoredBelow = storedBelow;
                after?.Invoke();
            };
        }

        _journaled = true;
        var bytes = e is MessageQueued { Message.PayloadId: 0 } q ? q.Message.Message.Payload.Length : 0; // a reference carries no payload
        _bytesSinceSnapshot += bytes;
        _journal.Write(e, then, bytes);
    }

    // Without a link nothing was written: both run at once, as the link would.
    private void AfterWrites(Action action)
    {
        if (_journalLink is null)
        {
            action();
        }
        else
        {
            _journalLink.AfterWrites(action);
        }
    }

    private void DeleteJournal(Action? then)
    {
        if (_journalLink is null)
        {
            then?.Invoke();
        }
        else
        {
            _journalLink.DeleteAll(then);
        }
    }

    private void StashUnlessJournalStopped(object message)
    {
        if (_journalLink is null)
        {
            Stash.Stash();
        }
        else
        {
            _journalLink.StashUnlessStopped(message, Stash);
        }
    }

    private void JournalAnswered()
    {
        // What waited for the answer may have handed the session on (SessionEntity.Follow.cs): its journal is released.
        if (_journalLink is not { } link)
        {
            return;
        }

        var stored = link.Answered();
        if (stored > 0 && _journalLink is not null)
        {
            _eventsSinceSnapshot += stored;
            _rowsSinceSnapshot++;
            MaybeSnapshot();
        }
    }

    /// <summary>
    /// A snapshot after Storage:SnapshotEvery events, once they fill at least a tenth as many journal rows: under load
    /// the journal writes many events per row (group commit), replaying them is cheap, and a snapshot with the deletion
    /// it allows would cost more storage writes than the rows it saves. Or after Storage:SnapshotEveryBytes of payload,
    /// once that is also twice the payload the snapshot itself would hold (so its cost stays a fraction of what it saves).
    /// </summary>
    private void MaybeSnapshot()
    {
        // Only when no write is pending: then the in-memory state is exactly the journaled state.
        var storage = _context.Options.Storage;
        if (_journalLink?.PendingWrites > 0 || _ending)
        {
            return;
        }

        var byCount = _eventsSinceSnapshot >= storage.SnapshotEvery && _rowsSinceSnapshot >= storage.SnapshotEvery / 10;
        var byBytes = _bytesSinceSnapshot >= storage.SnapshotEveryBytes && _bytesSinceSnapshot >= 2 * StateBytes();
        if (byCount || byBytes)
        {
            _eventsSinceSnapshot = 0;
            _rowsSinceSnapshot = 0;
            _bytesSinceSnapshot = 0;
            _journalLink?.Snapshot(TakeSnapshot());
        }
    }

    /// <summary>Payload bytes a snapshot would hold: the queue's and the in-flight messages'.</summary>
    private long StateBytes()
    {
        var bytes = _queue.Bytes;
        foreach (var i in _inflight.Entries)
        {
            bytes += i.Message.Message.Payload.Length;
        }

        return bytes;
    }

    private void Restore(SessionSnapshot s)
    {
        Apply(SessionCleared.Instance);
        _expirySeconds = s.ExpirySeconds;
        _will = s.Will;
        _hasState = true;
        foreach (var (filter, options) in s.Subscriptions)
        {
            OwnSubscriptions[filter] = options;
        }

        // An older snapshot's messages carry no position: they are numbered in order (its in-flight ones keep the
        // packet ids they were sent with, which later sends avoid).
        var legacy = s.NextSeq < 0;
        _out.NextSeq = legacy ? 0 : s.NextSeq;
        _out.SentBelow = s.SentBelow;
        foreach (var q in s.Queue)
        {
            var queued = legacy ? q with { Seq = _out.NextSeq++ } : q;
            RefAdded(queued);
            _queue.Enqueue(queued, mayDrop: false);
        }

        foreach (var i in s.Inflight)
        {
            RefAdded(i.Message);
            _inflight.Add(i);
        }

        if (s.InboundQos2.Count > 0 || s.InboundPending?.Count > 0 || s.OriginStream != 0)
        {
            Inbound.Restore(s.InboundQos2, s.InboundPending ?? [], s.OriginStream, s.OriginSeq);
        }

        _detachedAtMs = s.DetachedAtUnixMs;
        if (s.SeenOrigins is { Count: > 0 } seen)
        {
            (_seen ??= new()).Restore(seen);
        }
    }
}
