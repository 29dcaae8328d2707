using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Broker.Persistence;

namespace Broker.Sessions;

/// <summary>
/// The session's behaviours after start-up: <c>Recovering</c> (its journal is read; everything else waits in the
/// stash), <c>FetchingPayloads</c> (SessionEntity.Payloads.cs) and <c>Active</c>. Plain switches over the message (UntypedActor) rather than ReceiveActor handlers, which
/// would hold a delegate per message type for every session.
/// </summary>
public sealed partial class SessionEntity
{
    private void Recovering(object message)
    {
        switch (message)
        {
            case JournalRecovered recovered:
                _journalLink?.StartedAt(recovered.HighestSequenceNr);
                _context.Metrics.SessionStarted(fromKept: false);
                Recovered(recovered.Snapshot, recovered.Events);
                break;
            case StoredState read when read.Error is not null:
                // As a failed journal recovery: counted, and the next message to the session reads again.
                _context.Metrics.StorageFailure();
                Context.Stop(Self);
                break;
            case StoredState read:
                _context.Metrics.SessionStarted(fromKept: false);
                _journal.StoredWithoutJournal(read.HighestSequenceNr);
                Recovered(read.Snapshot, read.Events);
                break;
            default:
                StashUnlessJournalStopped(message);
                break;
        }
    }

    /// <summary>Restores what the journal held (or what the session kept when it passivated: SessionEntity.KeptState.cs).</summary>
    private void Recovered(object? snapshot, IReadOnlyList<object> events)
    {
        _recovering = true;
        if (snapshot is SessionSnapshot s)
        {
            Restore(s);
        }

        foreach (var e in events)
        {
            Apply((ISessionEvent)e);
        }

        _recovering = false;
        _out.Recovered(wasAttached: _detachedAtMs == 0); // attached when its node stopped: any message may have been sent

        _persistent = _journaled = snapshot is not null || events.Count > 0;
        if (FetchPayloadsAfterRecovery())
        {
            Become(Behaviour.FetchingPayloads);
            return;
        }

        BecomeActive();
        OnRecovered();
    }

    private void BecomeActive()
    {
        Become(Behaviour.Active);
        Stash.UnstashAll();
    }

    private void Active(object message)
    {
        if (HandleAway(message) || HandleFollowing(message) || HandleLiveMessage(message))
        {
            return;
        }

        switch (message)
        {
            case Routing.Deliver deliver:
                HandleDeliver(deliver);
                break;
            case OutboundAck ack:
                HandleOutboundAck(ack);
                break;
            case AttachSession attach:
                HandleAttach(attach);
                break;
            case DetachSession detach:
                HandleDetach(detach);
                break;
            case Terminated t:
                if (_journalLink?.IsJournal(t.ActorRef) == true)
                {
                    _journalLink.Stopped();
                }
                else
                {
                    ConnectionEnded(t.ActorRef);
                }

                break;
            case ConnectionStopped stopped:
                ConnectionEnded(stopped.Connection);
                break;
            case SessionSubscribe subscribe:
                HandleSubscribe(subscribe);
                break;
            case SessionUnsubscribe unsubscribe:
                HandleUnsubscribe(unsubscribe);
                break;
            case Routing.TopicSubscribed r:
                SubscriptionConfirmed(r.RequestId);
                break;
            case Routing.WildcardRegistered r:
                SubscriptionConfirmed(r.RequestId);
                break;
            case Routing.RetainedTopicsFound found:
                HandleRetainedTopicsFound(found);
                break;
            case InboundQos2Publish publish:
                HandleInboundQos2(publish);
                break;
            case InboundRelease release:
                HandleInboundRelease(release);
                break;
            case Routing.PublishRouted r:
                InboundRouted(r.AckId, r.Deliveries);
                break;
            case Routing.DeliveryStored r:
                InboundStored(r.AckId, r.Count, r.Outcome);
                break;
            case RegistrationRetry:
                RetryRegistrations();
                break;
            case RetainedRetry:
                RetryRetained();
                break;
            case Routing.RetainedRequestAnswered answered:
                RetainedAnswered(answered);
                break;
            case PublisherHoldCheck:
                ExpireHolds();
                break;
            case PublishWillTimer:
                PublishWill();
                break;
            case AttachRecordTimer:
                StoreAttachRecord(null);
                break;
            case WakeSession:
                // Recovery has run by now (expiry scheduled, routes being re-announced); answer once they are confirmed.
                (_wakers ??= new()).Add(Sender);
                AnswerWakersWhenRouted();
                WokenForExpiry();
                if (Unused)
                {
                    Leave();
                }

                break;
            case InboundSweep:
                SweepInbound();
                break;
            case ExpireTimer:
                EndSession("expired");
                break;
            case ReceiveTimeout:
                TryPassivate();
                break;
            case SessionIndexWritten written:
                IndexWritten(written);
                break;
            case JournalDone:
                JournalAnswered();
                break;
            case JournalRecovered r:
                _journalLink?.StartedAt(r.HighestSequenceNr);

                // A journal started for a session that had nothing stored: its recovery is expected to find nothing.
                if (r.Snapshot is not null || r.Events.Count > 0)
                {
                    _log.Warning("Session {0}: the journal held {1} entries the session directory did not know of; superseded",
                        _clientId, r.Events.Count + (r.Snapshot is null ? 0 : 1));
                }

                break;
            case SessionHandOff:
                // The shard moves to another node: stop once every write (and every hold of a payload) is stored.
                StopAfterWritesAndHolds();
                break;
            case Operations.GetSessionInfo request:
                HandleGetSessionInfo(request);
                break;
            case Routing.PayloadHeld held:
                HandlePayloadHeld(held);
                break;
            case Routing.CheckHolds check:
                HandleCheckHolds(check);
                break;
            case Routing.PayloadsFetched:
            case FetchRetry:
                break; // a late answer to a repeated request
            case HandOffDeadline:
                Context.Stop(Self);
                break;
            case HoldRetry:
                RetryHolds();
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
