using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Clean sessions beside their connections. A clean session (Clean Start, session expiry 0: it ends with its
/// connection, and nothing of it is stored) does not need a home that outlives its client, only an owner that keeps its
/// client id unique in the cluster: the registry of the id's shard (<see cref="ClientIdRegistry"/>, an entry, not an
/// actor per client), or, when the id had a stored session to discard, the id's sharded entity as its guard. The
/// session itself runs as a live instance of this class on the node of its connection, a child of that node's
/// <see cref="SessionHost"/>, with routes that name the node and the instance's incarnation:
/// <code>
///   CONNECT ─► connection ─AttachSession─► registry (any node) ─StartLiveSession─► session host (connection's node)
///                                                                                    └─► live session ─SessionAttached─► connection
///   publish ─► topic entity ─NodeDeliver (one per node)─► session host ─► live session ─► connection   (one network hop at most)
/// </code>
/// What follows is the guard's part, and the live session's, whichever its owner.
/// <list type="bullet">
/// <item>Takeover: a CONNECT anywhere reaches the entity, which closes the delegated connection (0x8E) as it closes its
/// own; the live session ends with its connection (its will goes out, its routes go).</item>
/// <item>The entity watches the delegated connection and ends when it closes; it forwards what still reaches it for
/// the client (deliveries routed before the live session's routes existed, management requests) to the host.</item>
/// <item>The entity's node fails or leaves: the live session claims its client id from the entity's next incarnation
/// (<see cref="ClaimLiveSession"/>), which grants it unless another connection took the client id meanwhile.</item>
/// </list>
/// </summary>
public sealed partial class SessionEntity
{
    private static readonly TimeSpan ClaimRetryInterval = TimeSpan.FromSeconds(2);
    private readonly bool _isLive;
    private readonly long _incarnation;
    private IActorRef? _owner; // live: the client id's session entity
    private Delegation? _delegate; // entity: the live session this client id's session runs as

    public static Props LiveProps(string clientId, Cluster.BrokerContext context, long incarnation, IActorRef owner, LiveQueueGauge gauge) =>
        Cluster.FactoryProps.Of((clientId, context, incarnation, owner, gauge),
            static s => new SessionEntity(s.clientId, s.context, s.incarnation, s.owner, s.gauge), Cluster.FactoryProps.Lean);

    /// <summary>The node routes name for this session: this node for a live session, none for an entity.</summary>
    private string? RouteNode => _isLive && !_follows ? _context.Nodes.Self : null;

    /// <summary>The incarnation routes name: a clean live session's; 0 (the entity) for a persistent session, wherever it runs.</summary>
    private long RouteIncarnation => _follows ? 0 : _incarnation;

    /// <summary>Nothing keeps this entity: no session, no connection, no live session it guards.</summary>
    private bool Unused => !_hasState && !Connected && _subscriptions.Count == 0 && !_ending && _delegate is null && _away is null;

    /// <summary>Leaves memory: a sharded entity asks its shard to passivate it; a live session stops.</summary>
    private void Leave()
    {
        if (_isLive)
        {
            Context.Stop(Self);
        }
        else
        {
            Context.Parent.Tell(new Passivate(PoisonPill.Instance));
        }
    }

    private bool RunsBesideConnection(ConnectionInfo info) =>
        !_isLive && SessionLifecycle.RunsBesideConnection(info, _context.Options.Sessions.CleanSessionsOnConnectionNode);

    /// <summary>
    /// Entity: a clean session starts for <paramref name="attach"/>. Whatever held the client id is taken over and
    /// discarded [MQTT-3.1.2-4], then the session runs beside the connection.
    /// </summary>
    private void Delegate(AttachSession attach)
    {
        // A Clean Start with expiry 0 (RunsBesideConnection): the plan closes a connection taken over and sends its will
        // (Clean Start ends the old session, MQTT-v5.0 3.1.2.5), and discards what the client id held, index rows and all.
        var plan = SessionLifecycle.PlanAttach(Facts, attach.Info, otherConnectionAttached: _connection is not null,
            _context.Options.Sessions.MaxInflight, NowMs);
        TakeOver(plan);

        EndDelegation(takenOver: true);
        DisarmPassivation();
        Timers.Cancel(PublishWillTimer.Instance);
        Timers.Cancel(ExpireTimer.Instance);
        if (plan.DiscardState)
        {
            foreach (var (filter, _) in _subscriptions)
            {
                Unregister(filter);
            }

            if (plan.DeleteJournal)
            {
                DeleteJournal(null);
                RemoveIndexRows(plan.DiscardIndex); // every row: the new session is clean
            }

            _persistent = plan.PersistentAfterDiscard; // false: expiry 0
            Store(SessionCleared.Instance);
        }

        var incarnation = Random.Shared.NextInt64(1, long.MaxValue);
        var host = _context.Nodes.HostAt(attach.Connection.Path.Address);
        _delegate = new Delegation(attach.Connection, incarnation, host);
        WatchDelegated(attach.Connection);
        host.Tell(new StartLiveSession(attach, incarnation));
    }

    /// <summary>
    /// Entity: learns when the delegated connection ends. On another node it is watched (that node may fail); on this
    /// node the session host says when the live session ended (<see cref="DelegationEnded"/>), and this entity tells the
    /// host when it stops (<see cref="OwnerStopped"/>, see PostStop).
    /// </summary>
    private void WatchDelegated(IActorRef connection)
    {
        if (!Locality.IsLocal(connection))
        {
            Context.Watch(connection);
        }
    }

    /// <summary>Entity: stops guarding the live session (telling its connection it was taken over, when it was).</summary>
    private void EndDelegation(bool takenOver)
    {
        if (_delegate is not { } d)
        {
            return;
        }

        if (takenOver)
        {
            _log.Info("Session {ClientId} taken over by a new connection; the old one is closed (0x8E)", _clientId);
            d.Connection.Tell(SessionTakenOver.Instance);
        }

        Context.Unwatch(d.Connection);
        _delegate = null;
    }

    /// <summary>Entity: something for the client reached the entity while the session runs beside its connection.</summary>
    private bool ForwardToLive(object message)
    {
        if (_delegate is not { } d)
        {
            return false;
        }

        switch (message)
        {
            case Deliver deliver:
                d.Host.Tell(ToLiveSession(deliver, d.Incarnation, backIfGone: false));
                return true;
            case Operations.GetSessionInfo { AtEntity: false } info:
                d.Host.Forward(info);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Entity: <paramref name="deliver"/> for the live session <paramref name="incarnation"/>, through its node's host;
    /// <paramref name="backIfGone"/>: a persistent session's, which the host hands back if the live session ended.
    /// </summary>
    private static NodeDeliver ToLiveSession(Deliver deliver, long incarnation, bool backIfGone) =>
        new(deliver.Message, [new NodeRecipient(deliver.ClientId, incarnation, deliver.SharedFilter)], deliver.AckTo, deliver.AckId,
            deliver.Origin, deliver.PayloadId, deliver.RetainedForFilter, FromEntity: true, BackIfGone: backIfGone);

    /// <summary>Entity: a live session whose guard stopped asks this (new) guard for its client id.</summary>
    private void HandleClaim(ClaimLiveSession claim)
    {
        if (_delegate is { } d && d.Incarnation == claim.Incarnation)
        {
            Sender.Tell(new LiveSessionClaimed(claim.Incarnation));
            return;
        }

        if (_delegate is null && !Connected && !_hasState && !_ending)
        {
            _delegate = new Delegation(claim.Connection, claim.Incarnation, _context.Nodes.HostAt(Sender.Path.Address));
            WatchDelegated(claim.Connection);
            Sender.Tell(new LiveSessionClaimed(claim.Incarnation));
            return;
        }

        _log.Info("Session {ClientId}: a live session claimed the client id after its guard moved, but another connection holds it now", _clientId);
        Sender.Tell(SessionTakenOver.Instance);
    }

    /// <summary>Live: the guard (the client id's entity) stopped, so its node left or failed; claim the client id again.</summary>
    private void OwnerLost()
    {
        _owner = null;
        if (_ending)
        {
            return;
        }

        _log.Info("Session {ClientId}: its guard moved; claiming the client id again", _clientId);
        ClaimAgain();
        Timers.StartPeriodicTimer(ClaimRetry.Instance, ClaimRetry.Instance, ClaimRetryInterval);
    }

    private void ClaimAgain()
    {
        if (_connection is not null && !_ending)
        {
            _context.SessionRegion.Tell(new ClaimLiveSession(_clientId, _connection, _incarnation));
        }
    }

    private void Claimed(LiveSessionClaimed claimed)
    {
        if (claimed.Incarnation != _incarnation || _owner is not null)
        {
            return;
        }

        Timers.Cancel(ClaimRetry.Instance);
        _owner = Sender;
        _context.Nodes.SelfHost.Tell(new WatchOwner(_owner)); // the session host watches it for this session
    }

    /// <summary>Live: the guard says another connection holds the client id now.</summary>
    private void LiveTakenOver()
    {
        Timers.Cancel(ClaimRetry.Instance);
        var connection = _connection;
        if (connection is null)
        {
            return;
        }

        // The connection closes (0x8E) and the session ends with it, as any clean session taken over.
        connection.Tell(SessionTakenOver.Instance);
    }

    /// <summary>Handles the live-session messages of either role; false when the message is not one of them.</summary>
    private bool HandleLiveMessage(object message)
    {
        switch (message)
        {
            case ClaimLiveSession claim when !_isLive:
                HandleClaim(claim);
                return true;
            case LiveSessionClaimed claimed when _isLive:
                Claimed(claimed);
                return true;
            case SessionTakenOver when _isLive:
                LiveTakenOver();
                return true;
            case ClaimRetry:
                ClaimAgain();
                return true;
            case OwnerStopped stopped when _isLive && stopped.Owner.Equals(_owner):
                OwnerLost();
                return true;
            case Terminated t when _delegate is { } d && t.ActorRef.Equals(d.Connection):
                DelegationOver();
                return true;
            case DelegationEnded ended:
                if (_delegate is { } current && current.Incarnation == ended.Incarnation)
                {
                    DelegationOver();
                }

                return true;
            default:
                return !_isLive && ForwardToLive(message);
        }
    }

    private void DelegationOver()
    {
        _delegate = null;
        if (Unused)
        {
            Leave();
        }
    }

    private sealed record Delegation(IActorRef Connection, long Incarnation, IActorRef Host);

    private sealed class ClaimRetry
    {
        public static readonly ClaimRetry Instance = new();
    }
}
