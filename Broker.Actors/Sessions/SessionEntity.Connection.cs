using Akka.Event;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>Attach, takeover, detach, will and expiry (MQTT-v5.0 3.1.2.4, 3.1.2.5, 3.1.4, 4.1).</summary>
public sealed partial class SessionEntity
{
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
        var wasConnected = _connection is not null;
        if (_connection is not null && !_connection.Equals(attach.Connection))
        {
            // [MQTT-3.1.4-3] takeover: close the existing connection. Its will goes out unless the session continues
            // on the new connection within the will delay (MQTT-v5.0 3.1.2.5).
            _log.Info("Session {ClientId} taken over by a new connection; the old one is closed (0x8E)", _clientId);
            _connection.Tell(SessionTakenOver.Instance);
            Context.Unwatch(_connection);
            _connection = null;
            if (_will is not null && (info.CleanStart || _will.DelayInterval == 0))
            {
                PublishWill();
            }
        }

        Timers.Cancel(PublishWillTimer.Instance);
        Timers.Cancel(ExpireTimer.Instance);

        var present = !info.CleanStart && _hasState;
        if (info.SessionExpiry > 0 || present)
        {
            _log.Info("Session {ClientId} {Action}: expiry {Expiry} s, {Subscriptions} subscriptions, {Queued} queued messages",
                _clientId, present ? "resumed" : "created", info.SessionExpiry, _subscriptions.Count, QueuedCount);
        }

        if (info.CleanStart && (_hasState || _subscriptions.Count > 0))
        {
            // [MQTT-3.1.2-4] Clean Start: discard the existing session.
            foreach (var (filter, _) in _subscriptions)
            {
                Unregister(filter);
            }

            // Delete what the journal holds up to now; if the new session is persistent, its SessionCleared
            // marker also protects a recovery that would otherwise replay events whose deletion failed.
            if (_journaled)
            {
                DeleteJournal(null);
                if (!_isLive)
                {
                    // The old session's index rows go; a new persistent session writes its own.
                    IndexWrite(info.SessionExpiry > 0
                        ? Persistence.SessionIndexChange.RemoveRoutes(_clientId)
                        : Persistence.SessionIndexChange.RemoveSession(_clientId));
                }
            }

            _persistent = _journaled && info.SessionExpiry > 0;
            Store(SessionCleared.Instance);
        }

        var becomesPersistent = info.SessionExpiry > 0 && !_persistent;
        var deferRecord = MayDeferAttachRecord(info, present, becomesPersistent, wasConnected);
        _persistent = info.SessionExpiry > 0;
        _version = info.Version;
        _inflightCapacity = Math.Max(1, Math.Min(info.ReceiveMaximum, _context.Options.Sessions.MaxInflight));
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

        var previousExpiry = _expirySeconds;
        if (deferRecord)
        {
            DeferAttachRecord(info); // a plain resume: the CONNACK needs nothing stored (SessionEntity.Resume.cs)
        }
        else
        {
            Store(new SessionOpened(info.SessionExpiry, info.Will, NextSeq));
        }

        if (becomesPersistent && !info.CleanStart)
        {
            // A live clean session resumed as a persistent one: journal what it already has.
            foreach (var (filter, options) in _subscriptions.ToList())
            {
                Store(new SubscriptionAdded(filter, options));
                IndexRoute(filter, null);
            }
        }

        // A new persistent session (or one whose expiry shrank) stores a deadline: the earliest it could expire, so
        // that it is found on time even if this node fails while the client is connected. (Not awaited: the CONNACK
        // waits for the journal, and the index write of the same moment follows within one batch.)
        if (Indexed && (!present || info.SessionExpiry < previousExpiry || becomesPersistent))
        {
            IndexDeadline();
        }

        AfterWrites(() =>
        {
            if (_connection is null || !_connection.Equals(attach.Connection))
            {
                return; // the connection went away (or was taken over) while the attach was being stored
            }

            RouteInboundAgainOnAttach(); // before anything the client publishes on this connection
            _connection.Tell(new SessionAttached(present, Beside: _isLive));
            ResendInflight();
            Pump();
        });
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
        if (detach.NewExpiry is { } expiry && expiry != _expirySeconds)
        {
            Store(new SessionSettingsChanged(expiry, false));
        }

        if (!detach.PublishWill && _will is not null)
        {
            // A normal DISCONNECT deletes the will [MQTT-3.14.4-3].
            Store(new SessionSettingsChanged(_expirySeconds, true));
        }

        AfterConnectionLost();
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
        if (_expirySeconds == 0)
        {
            EndSession("clean session closed");
            return;
        }

        Store(new SessionDetached(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _out.SentBelow));
        if (Indexed)
        {
            IndexDeadline();
        }

        if (_will is not null)
        {
            if (_will.DelayInterval == 0)
            {
                PublishWill();
            }
            else
            {
                // The will waits for the shorter of its delay and the session expiry (MQTT-v5.0 3.1.3.2.2).
                var delay = Math.Min(_will.DelayInterval, _expirySeconds);
                Timers.StartSingleTimer(PublishWillTimer.Instance, PublishWillTimer.Instance, TimeSpan.FromSeconds(delay));
            }
        }

        ScheduleExpiry();
        ArmPassivation();
    }

    private void PublishWill()
    {
        var will = _will;
        if (will is null || Connected)
        {
            return;
        }

        Store(new SessionSettingsChanged(_expirySeconds, true));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var expiresAt = will.Properties.MessageExpiryInterval is { } seconds ? now + (seconds * 1000L) : 0;
        var message = new MqttApplicationMessage(
            will.Topic, will.Payload, will.QoS, will.Retain, will.Properties, _clientId, expiresAt);
        _context.TopicRegion.Tell(new RoutePublish(message, null, 0));
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
            if (entry.Released)
            {
                _connection!.Tell(new SendPacket(new MqttPubRelPacket { PacketId = entry.PacketId }));
            }
            else
            {
                _connection!.Tell(new SendPublish(entry.Message, entry.PacketId, true));
            }
        }
    }
}
