using Akka.Actor;
using Akka.Cluster.Sharding;
using Broker.Persistence;
using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>
/// An offline persistent session leaves memory when nobody addresses it, and comes back from its journal when
/// somebody does: a delivery (topic entities send through the session region), a reconnect, or its expiry (found by
/// the <see cref="ExpirySweeper"/> in the <see cref="SessionIndex"/>). What the node keeps for a passivated session
/// is its id in the shard's <see cref="StoredEntityDirectory"/> and its routes.
/// <code>
///   detached ──(idle Sessions:PassivateAfterSeconds)──► deadline stored? ─► Passivate ─► stopped after pending writes
///      ▲                                                   (expiry due soon: stays, its own timer ends it)
///      └──── Deliver / AttachSession / WakeSession through the region ◄── recovered from journal and snapshot
/// </code>
/// A connected session, a guard of a live clean session, and a session with work in hand (writes, holds, inbound
/// QoS 2 messages being routed, a delayed will) never passivate.
/// <para>
/// The index rows this entity keeps (only as a persistent sharded session): its wildcard filters, written before the
/// SUBACK; and its expiry deadline, which is never later than the real one (written when the session is created,
/// moved when the client leaves), so that the sweeper may wake it early but never late.
/// </para>
/// </summary>
public sealed partial class SessionEntity
{
    // index writes whose completion something waits for
    private Dictionary<long, Action>? _indexWaits { get => _stored?.IndexWaits; set { if (_stored is not null || value is not null) Stored.IndexWaits = value; } }

    // the deadline this incarnation stored (0: unknown)
    private long _deadlineStoredMs { get => _stored?.DeadlineStoredMs ?? default; set { if (_stored is not null || value != default) Stored.DeadlineStoredMs = value; } }

    private TimeSpan PassivateAfter => TimeSpan.FromSeconds(_context.Options.Sessions.PassivateAfterSeconds);

    /// <summary>This entity keeps index rows: a persistent session in its sharded entity.</summary>
    private bool Indexed => (!_isLive || _follows) && _persistent;

    /// <summary>The moment a detached session expires (Unix ms); long.MaxValue when it never does.</summary>
    private long DeadlineMs => SessionLifecycle.DeadlineMs(_expirySeconds, _detachedAtMs, NowMs);

    private void IndexWrite(SessionIndexChange change, Action? then = null)
    {
        if (then is null)
        {
            _context.SessionIndexWriter.Tell(new WriteSessionIndex(change));
            return;
        }

        var requestId = ++_nextRequestId;
        (_indexWaits ??= new())[requestId] = then;
        _context.SessionIndexWriter.Tell(new WriteSessionIndex(change, Self, requestId));
    }

    private void IndexWritten(SessionIndexWritten written)
    {
        if (_indexWaits is not null && _indexWaits.Remove(written.RequestId, out var then))
        {
            then();
        }
    }

    /// <summary>The route of a wildcard filter of a persistent session is written; <paramref name="then"/> when stored.</summary>
    private bool IndexRoute(string filter, Action? then)
    {
        var inner = MqttTopic.TryParseShared(filter, out _, out var f) ? f : filter;
        if (!Indexed || !MqttTopic.HasWildcards(inner))
        {
            return false;
        }

        IndexWrite(SessionIndexChange.AddRoute(_clientId, filter), then);
        return true;
    }

    private void UnindexRoute(string filter)
    {
        var inner = MqttTopic.TryParseShared(filter, out _, out var f) ? f : filter;
        if (Indexed && MqttTopic.HasWildcards(inner))
        {
            IndexWrite(SessionIndexChange.RemoveRoute(_clientId, filter));
        }
    }

    /// <summary>Stores the current deadline (the client just left, or it is unknown to this incarnation).</summary>
    private void IndexDeadline(Action? then = null)
    {
        var deadline = DeadlineMs;
        _deadlineStoredMs = deadline;
        IndexWrite(deadline == long.MaxValue
            ? SessionIndexChange.RemoveDeadline(_clientId)
            : SessionIndexChange.SetDeadline(_clientId, deadline), then);
    }

    /// <summary>An offline session starts counting its idle time.</summary>
    private void ArmPassivation()
    {
        if (!_isLive && !Connected && _delegate is null && _away is null && PassivateAfter > TimeSpan.Zero)
        {
            Context.SetReceiveTimeout(PassivateAfter);
        }
    }

    private void DisarmPassivation() => Context.SetReceiveTimeout(null);

    /// <summary>Idle for Sessions:PassivateAfterSeconds: leave memory if nothing holds the session here (<see cref="SessionLifecycle.MayPassivate"/>).</summary>
    private void TryPassivate()
    {
        var facts = new PassivationFacts(
            Held: _isLive || Connected || _delegate is not null || _away is not null,
            Ending: _ending,
            Unused: Unused,
            Persistent: _persistent,
            WorkInHand: _journalLink?.PendingWrites > 0 || _awaitingHeld?.Count > 0 || _inFlow?.PendingCount > 0 || _indexWaits?.Count > 0,
            WillPending: Timers.IsTimerActive(PublishWillTimer.Instance),
            DeadlineMs: DeadlineMs,
            DeadlineStoredMs: _deadlineStoredMs);
        switch (SessionLifecycle.MayPassivate(facts, NowMs, (long)(ExpirySweeper.Interval + ExpirySweeper.Lookahead).TotalMilliseconds))
        {
            case PassivationDecision.StayHeld:
                DisarmPassivation();
                break;
            case PassivationDecision.LeaveUnused:
                DisarmPassivation();
                Leave();
                break;
            case PassivationDecision.Passivate:
                DisarmPassivation();
                Context.Parent.Tell(new Passivate(SessionHandOff.Instance));
                break;
            case PassivationDecision.StoreDeadlineThenPassivate:
                DisarmPassivation();
                IndexDeadline(() =>
                {
                    if (!Connected && _delegate is null && !_ending)
                    {
                        Context.Parent.Tell(new Passivate(SessionHandOff.Instance));
                    }
                });
                break;
            default:
                break; // ending; or asked again after the next idle period (a session due soon is ended by its own timer)
        }
    }

    /// <summary>
    /// Woken by the expiry sweeper (or at start-up): recovery has scheduled the expiry already. A connected session's
    /// stored deadline moves to the earliest it could be; one with nothing stored deletes rows left by a crash.
    /// </summary>
    private void WokenForExpiry()
    {
        if (_isLive)
        {
            return;
        }

        if (Unused)
        {
            IndexWrite(SessionIndexChange.RemoveSession(_clientId));
            return;
        }

        if (Connected && _persistent)
        {
            StoreAttachRecord(null); // a deferred attach record goes with the later deadline (SessionEntity.Resume.cs)
            var deadline = _expirySeconds == uint.MaxValue
                ? long.MaxValue
                : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + (_expirySeconds * 1000L);
            IndexWrite(deadline == long.MaxValue
                ? SessionIndexChange.RemoveDeadline(_clientId)
                : SessionIndexChange.SetDeadline(_clientId, deadline));
        }
    }
}
