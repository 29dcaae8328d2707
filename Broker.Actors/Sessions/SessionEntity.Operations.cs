using Akka.Actor;
using Akka.Cluster.Sharding;
using Broker.Operations;

namespace Broker.Sessions;

/// <summary>
/// What operators see of a session: the management API's <see cref="GetSessionInfo"/>, and the session gauges of <see cref="Cluster.BrokerMetrics"/> (sessions, online, subscriptions, queued, in flight):
/// after each message the entity reports how its own figures changed, and takes them all back when it stops. So the
/// node's gauges are the sum over its live entities without a registry, and cost a few compares per message.
/// </summary>
public sealed partial class SessionEntity
{
    private int _reportedSession;
    private int _reportedOnline;
    private int _reportedSubscriptions;
    private int _reportedQueued;
    private int _reportedInflight;

    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is ActorTimers.Tick tick)
        {
            if (_timers.Accept(tick) is not { } due)
            {
                return true; // cancelled or replaced meanwhile
            }

            message = due;
        }

        var handled = base.AroundReceive(receive, message);
        ReportGauges(stopping: false);
        return handled;
    }

    /// <summary>
    /// A session that failed stops instead of restarting with nothing in memory: a restart keeps its address, so nobody
    /// would learn that it forgot its connection or that its session runs beside the connection on another node. The
    /// old instance's PostStop tells its connection (a live session's) and its host learns of the stop (an entity's),
    /// so everything attaches again to the next incarnation, which recovers from the journal.
    /// </summary>
    protected override void PostRestart(Exception reason) => Context.Stop(Self);

    protected override void PostStop()
    {
        AnswerHeld(ended: false);
        ReportGauges(stopping: true);
        if (_isLive && _connection is not null)
        {
            _connection.Tell(new LiveSessionStopped(Self)); // it does not watch this session (SessionAttached.Beside)
        }
        else if (_delegate is { } d && Locality.IsLocal(d.Host))
        {
            d.Host.Tell(new OwnerStopped(Self)); // the host does not watch a guard on its node
        }

        if (_registrySeq > 0)
        {
            Context.Parent.Tell(new RegistryEntityStopped(_clientId, _registrySeq)); // the id is free unless handed on since
        }

        base.PostStop();
    }

    private string SelfAddress => Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();

    private void HandleGetSessionInfo(GetSessionInfo request)
    {
        var subscriptions = _subscriptions
            .Select(s => new SubscriptionInfo(s.Key, (int)s.Value.QoS, s.Value.NoLocal, s.Value.RetainAsPublished,
                (int)s.Value.RetainHandling, s.Value.SubscriptionIdentifier))
            .ToList();
        Sender.Tell(new SessionInfo(_clientId, _hasState || Connected, Connected, _expirySeconds > 0, _expirySeconds,
            subscriptions, QueuedCount, InflightCount, _isLive ? _context.Nodes.Self : SelfAddress,
            _follows ? _owner?.Path.Address.ToString() : _isLive ? null : SelfAddress));
        if (Unused)
        {
            // Asked about a client id that has no session: do not keep an empty entity for it.
            Leave();
        }
    }

    private void ReportGauges(bool stopping)
    {
        var session = !stopping && (_hasState || Connected) ? 1 : 0;
        var online = !stopping && Connected ? 1 : 0;
        var subscriptions = stopping ? 0 : _subscriptions.Count;
        var queued = stopping ? 0 : QueuedCount;
        var inflight = stopping ? 0 : InflightCount;
        if (session == _reportedSession && online == _reportedOnline && subscriptions == _reportedSubscriptions &&
            queued == _reportedQueued && inflight == _reportedInflight)
        {
            return;
        }

        _context.Metrics.SessionGauges(
            session - _reportedSession,
            online - _reportedOnline,
            subscriptions - _reportedSubscriptions,
            queued - _reportedQueued,
            inflight - _reportedInflight);
        _reportedSession = session;
        _reportedOnline = online;
        _reportedSubscriptions = subscriptions;
        _reportedQueued = queued;
        _reportedInflight = inflight;
    }
}
