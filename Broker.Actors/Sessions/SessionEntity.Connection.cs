using Akka.Event;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>Attach, takeover, detach, will and expiry (MQTT-v5.0 3.1.2.4, 3.1.2.5, 3.1.4, 4.1).</summary>
public sealed partial class SessionEntity
{
    /// <summary>What the lifecycle rules read of this session now (<see cref="SessionLifecycle"/>).</summary>
    private SessionFacts Facts => new(_expirySeconds, _detachedAtMs, _will, _hasState, _subscriptions.Count, _persistent,
        _journaled, _isLive && !_follows, _attachRecordPending, QueuedCount, InflightCount);

    private static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private void HandleAttach(AttachSession attach)
    {
        if (_ending)
        {
            // The session is on its way out; the connection retries through the region and meets a fresh entity.
            Context.System.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(50), _context.SessionRegion, attach, attach.Connection);
            return;
        }

        if (_delegate is { } d && attach.Connection.Equals(d.Connection))
        {
            return; // a repeated attach of the connection whose live session is starting (or runs) beside it
        }

        if (RunsBesideConnection(attach.Info))
        {
            Delegate(attach);
            return;
        }

        // A session that ran beside its connection is taken over by one this entity holds itself.
        EndDelegation(takenOver: true);

        if (attach.Connection.Equals(_connection))
        {
            // The same connection asked again (ClientConnectionActor repeats an unanswered attach, in case a dying
            // node swallowed it): it is attached already and is answered once; a repeated Clean Start must not wipe
            // what the client did since.
            return;
        }

        var info = attach.Info;
        var plan = SessionLifecycle.PlanAttach(Facts, info, otherConnectionAttached: _connection is not null,
            _context.Options.Sessions.MaxInflight, NowMs);
        if (plan.DeferRecord && _context.Options.Sessions.PersistentSessionsFollowClient && !Locality.IsLocal(attach.Connection))
        {
            plan = plan with { DeferRecord = false }; // the session may move to the connection's node: its state must be whole
        }

        TakeOver(plan);

        Timers.Cancel(PublishWillTimer.Instance);
        Timers.Cancel(ExpireTimer.Instance);

        if (plan.WorthLogging)
        {
            _log.Info("Session {ClientId} {Action}: expiry {Expiry} s, {Subscriptions} subscriptions, {Queued} queued messages",
                _clientId, plan.Present ? "resumed" : "created", info.SessionExpiry, _subscriptions.Count, QueuedCount);
        }

        if (plan.DiscardState)
        {
            // [MQTT-3.1.2-4] Clean Start: discard the existing session.
            foreach (var (filter, _) in _subscriptions)
            {
                Unregister(filter);
            }

            if (plan.DeleteJournal)
            {
                DeleteJournal(null);
                RemoveIndexRows(plan.DiscardIndex);
            }

            _persistent = plan.PersistentAfterDiscard;
            Store(SessionCleared.Instance);
        }

        _persistent = plan.Persistent;
        _version = info.Version;
        _inflightCapacity = plan.InflightCapacity;
        if (_outFlow is not null)
        {
            _outFlow.Inflight.Capacity = _inflightCapacity;
        }

        _connection = attach.Connection;
        if (!_isLive)
        {
            Context.Watch(_connection); // a live session's connection tells it when it stops (SessionAttached.Beside)
        }

        DisarmPassivation();

        if (plan.DeferRecord)
        {
            DeferAttachRecord(info); // a plain resume: the CONNACK needs nothing stored (SessionEntity.Resume.cs)
        }
        else
        {
            Store(new SessionOpened(info.SessionExpiry, info.Will, NextSeq));
        }

        if (plan.JournalSubscriptions)
        {
            // A live clean session resumed as a persistent one: journal what it already has.
            foreach (var (filter, options) in _subscriptions.ToList())
            {
                Store(new SubscriptionAdded(filter, options));
                IndexRoute(filter, null);
            }
        }

        // (Not awaited: the CONNACK waits for the journal, and the index write of the same moment follows within one batch.)
        if (plan.StoreDeadline)
        {
            IndexDeadline();
        }

        AfterWrites(() =>
        {
            if (_connection is null || !_connection.Equals(attach.Connection))
            {
                return; // the connection went away (or was taken over) while the attach was being stored
            }

            if (MayFollow(attach.Connection))
            {
                MoveOut(attach, plan.Present); // the session runs beside its connection (SessionEntity.Follow.cs)
                return;
            }

            RouteInboundAgainOnAttach(); // before anything the client publishes on this connection
            _connection.Tell(new SessionAttached(plan.Present, Beside: _isLive));
            ResendInflight();
            Pump();
        });
    }

    /// <summary>
    /// [MQTT-3.1.4-3] takeover: closes the connection attached so far (v5 0x8E); its will goes out unless the session
    /// continues on the new connection within the will delay (MQTT-v5.0 3.1.2.5).
    /// </summary>
    private void TakeOver(AttachPlan plan)
    {
        if (!plan.TakeOverOld || _connection is null)
        {
            return;
        }

        _log.Info("Session {ClientId} taken over by a new connection; the old one is closed (0x8E)", _clientId);
        _connection.Tell(SessionTakenOver.Instance);
        Context.Unwatch(_connection);
        _connection = null;
        if (plan.PublishWillNow)
        {
            PublishWill();
        }
    }

    /// <summary>The index rows of a session discarded by Clean Start [MQTT-3.1.2-4].</summary>
    private void RemoveIndexRows(DiscardedIndex rows)
    {
        if (rows != DiscardedIndex.None)
        {
            IndexWrite(rows == DiscardedIndex.RemoveRoutes
                ? Persistence.SessionIndexChange.RemoveRoutes(_clientId)
                : Persistence.SessionIndexChange.RemoveSession(_clientId));
        }
    }

    private void HandleDetach(DetachSession detach)
    {
        if (!detach.Connection.Equals(_connection))
        {
            return;
        }

        if (!_isLive)
        {
            Context.Unwatch(_connection);
        }

        _connection = null;
        var plan = SessionLifecycle.PlanDetach(Facts, detach.PublishWill, detach.NewExpiry, NowMs);
        if (plan.StoreExpiry is { } expiry)
        {
            Store(new SessionSettingsChanged(expiry, false)); // MQTT-v5.0 3.14.2.2.2
        }

        if (plan.DropWill)
        {
            // A normal DISCONNECT deletes the will [MQTT-3.14.4-3].
            Store(new SessionSettingsChanged(_expirySeconds, true));
        }

        AfterConnectionLost(); // planned again from what the stores left (the same as plan.Lost unless storing was refused)
    }

    private void ConnectionEnded(IActorRef connection)
    {
        if (!connection.Equals(_connection))
        {
            return;
        }

        // The connection actor stopped without saying goodbye: treat as an abnormal close (will goes out).
        _connection = null;
        AfterConnectionLost();
    }

    private void AfterConnectionLost()
    {
        var plan = SessionLifecycle.PlanConnectionLost(Facts, NowMs);
        if (plan.EndSession)
        {
            EndSession("clean session closed"); // its will goes out as it ends
            return;
        }

        Store(new SessionDetached(plan.DetachedAtMs, _out.SentBelow));
        if (plan.StoreDeadline)
        {
            IndexDeadline();
        }

        if (plan.Will == WillTiming.Now)
        {
            PublishWill();
        }
        else if (plan.Will == WillTiming.AfterDelay)
        {
            // The will waits for the shorter of its delay and the session expiry (MQTT-v5.0 3.1.3.2.2).
            Timers.StartSingleTimer(PublishWillTimer.Instance, PublishWillTimer.Instance, TimeSpan.FromSeconds(plan.WillDelaySeconds));
        }

        if (plan.ExpireAfterSeconds is { } seconds)
        {
            ScheduleExpiry(TimeSpan.FromSeconds(seconds));
        }

        ArmPassivation();
    }

    private void PublishWill()
    {
        var will = _will;
        if (will is null || Connected)
        {
            return;
        }

        Store(new SessionSettingsChanged(_expirySeconds, true)); // removed first: it goes out once
        _context.TopicRegion.Tell(new RoutePublish(SessionLifecycle.WillMessage(will, _clientId, NowMs), null, 0));
    }

    private void ResendInflight()
    {
        // [MQTT-4.4.0-1] on a resumed session, resend unacknowledged PUBLISH (DUP set) and PUBREL, in order.
        if (_outFlow is null)
        {
            return; // nothing was ever sent
        }

        foreach (var entry in _inflight.Entries)
        {
            switch (SessionDelivery.Resend(entry))
            {
                case ResendAction.PubRel:
                    _connection!.Tell(new SendPacket(new MqttPubRelPacket { PacketId = entry.PacketId }));
                    break;
                case ResendAction.PublishDup:
                    _connection!.Tell(new SendPublish(entry.Message, entry.PacketId, true));
                    break;
            }
        }
    }
}
