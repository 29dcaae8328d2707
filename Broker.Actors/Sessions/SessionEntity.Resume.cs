namespace Broker.Sessions;

/// <summary>
/// A plain resume stores nothing before its CONNACK. What <see cref="SessionOpened"/> records on a resume is, besides
/// settings that did not change, only "a client is attached since": a recovery after a crash reads it to count the
/// expiry from the crash rather than from when the client left before (<see cref="OnRecovered"/>), and to send every
/// message the crashed node may have sent again with DUP (<see cref="OutboundFlow.Recovered"/>). Neither needs the
/// record at the moment of the CONNACK, so a resume that changes nothing else defers it:
/// <code>
///   CONNECT (Clean Start 0, same expiry, no will; session idle, nothing queued or in flight, client back within
///            a quarter of its expiry)
///     └─► attached in memory, CONNACK at once ── the record is stored, just before the session's next event
///                                                (a message queued, a subscription, ...; so before anything sent),
///                                                or after <see cref="SessionLifecycle.AttachRecordDelay"/> (a quarter of the expiry,
///                                                at most a minute), whichever comes first; a client that leaves
///                                                before stores its departure instead
/// </code>
/// A crash before the record is stored finds the session as the client left it last time, which it was, except for
/// the clock: its expiry counts from that departure. Since the client came back within a quarter of the expiry and the
/// record follows within another quarter, at least half the expiry remains after the crash (and the stored deadline of
/// the expiry sweeper, written at that departure, is no later than the recovered one). Anything else (Clean Start, a
/// will, another expiry, queued or in-flight messages, a takeover, a session recovered as attached) stores the record
/// before the CONNACK, as before. The rule is <see cref="SessionLifecycle.MayDeferAttachRecord"/>.
/// </summary>
public sealed partial class SessionEntity
{
    // attached in memory; SessionOpened not yet stored
    private bool _attachRecordPending { get => _stored?.AttachRecordPending ?? default; set { if (_stored is not null || value != default) Stored.AttachRecordPending = value; } }

    /// <summary>Attaches without storing: the record follows (<see cref="StoreAttachRecord"/>).</summary>
    private void DeferAttachRecord(ConnectionInfo info)
    {
        Apply(new SessionOpened(info.SessionExpiry, info.Will, NextSeq));
        _attachRecordPending = true;
        Timers.StartSingleTimer(AttachRecordTimer.Instance, AttachRecordTimer.Instance,
            SessionLifecycle.AttachRecordDelay(_expirySeconds, Random.Shared.NextDouble()));
    }

    /// <summary>
    /// Stores a pending record: when its time is up (<paramref name="next"/> null), or before any other event of the
    /// session (called by <see cref="Store{TEvent}"/> with that event) while the client is attached. Once the client
    /// has left, its departure (stored next) replaces the record; a new attach stores its own.
    /// </summary>
    private void StoreAttachRecord(ISessionEvent? next)
    {
        if (!_attachRecordPending)
        {
            return;
        }

        _attachRecordPending = false;
        Timers.Cancel(AttachRecordTimer.Instance);
        if (!Connected || next is SessionOpened or SessionCleared || !_persistent)
        {
            return;
        }

        // Not applied again: the state already holds it. Its position counter is the one before `next`.
        _journaled = true;
        _journal.Write(new SessionOpened(_expirySeconds, _will, NextSeq), null);
    }

    private sealed class AttachRecordTimer
    {
        public static readonly AttachRecordTimer Instance = new();
    }
}
