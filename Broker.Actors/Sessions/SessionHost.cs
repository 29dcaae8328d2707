using Akka.Actor;
using Broker.Cluster;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// One per node, named "session-host": the parent of the live sessions that run beside their connections on this
/// node (clean sessions; see <see cref="SessionEntity"/>; their client ids are held by <see cref="ClientIdRegistry"/>). It is
/// where publishes for them arrive, one <see cref="NodeDeliver"/> per publish and node, and hands each recipient its
/// <see cref="Deliver"/> in process.
/// <code>
///   topic entity ──NodeDeliver──► session host ──Deliver──► live session ──SendPublish──► connection
///   (any node)                    (the connection's node: every hop after the first stays in process)
/// </code>
/// A recipient that is no longer here (its connection closed while the publish was on its way) gets the delivery
/// through the session region, whose entity forwards it to a newer live session of the client or confirms and drops it.
/// <para>
/// It also keeps the exact-topic subscriptions of its live sessions (<see cref="LocalRouteTable{TWaiter}"/>): a topic
/// entity stores one route to this node per topic, not one per clean session, so clean sessions that come and go
/// (a reconnect storm) write nothing.
/// </para>
/// </summary>
public sealed class SessionHost : UntypedActor
{
    public const string Name = "session-host";
    private readonly BrokerContext _context;
    private readonly LiveSessionDirectory _live = new();
    private readonly LocalRouteTable<(IActorRef Session, long RequestId)> _routes = new(
        (long)RouteLinger.TotalMilliseconds, (long)EnsureRetry.TotalMilliseconds);
    private readonly List<NodeRecipient> _recipients = new();
    private readonly List<(IActorRef To, Deliver Deliver)> _sends = new();
    private readonly List<string> _dropped = new();
    private readonly List<(string Topic, long EnsureId)> _ensureAgain = new();
    private ICancelable? _sweep;
    private LiveSessionShelves? _shelves;

    /// <summary>How long this node's route to a topic stays after its last local subscriber left (devices come back).</summary>
    public static readonly TimeSpan RouteLinger = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan EnsureRetry = TimeSpan.FromSeconds(5);

    public SessionHost(BrokerContext context)
    {
        _context = context;
    }

    protected override void PreStart()
    {
        _shelves = LiveSessionShelves.Start(Context);
        _sweep = Context.System.Scheduler.ScheduleTellRepeatedlyCancelable(
            TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5), Self, SweepRoutesTick.Instance, ActorRefs.NoSender);
    }

    protected override void PostStop() => _sweep?.Cancel();

    /// <summary>
    /// The live sessions are children of this host's shelves (<see cref="LiveSessionShelves"/>; of the host itself while
    /// a shelf starts): it learns that one ended from that supervision (<see cref="ShelvedSessionEnded"/>, or in its own
    /// turn) instead of watching each (a watch and a Terminated message per connecting client).
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new ChildrenEnd(Ended);

    private sealed class ChildrenEnd(Action<IActorRef> ended) : OneForOneStrategy(DefaultDecider)
    {
        public override void HandleChildTerminated(IActorContext actorContext, IActorRef child, IEnumerable<IInternalActorRef> children) =>
            ended(child);
    }

    private sealed class SweepRoutesTick
    {
        public static readonly SweepRoutesTick Instance = new();
    }

    public static Props Props(BrokerContext context) =>
        Akka.Actor.Props.Create(() => new SessionHost(context)).WithMailbox(LeanMailbox.ConfigPath);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case NodeDeliver deliver:
                HandleNodeDeliver(deliver);
                break;
            case AddLocalRoute add:
                HandleAddRoute(add);
                break;
            case RemoveLocalRoute remove:
                _routes.Remove(remove.Topic, remove.ClientId, remove.Incarnation, Environment.TickCount64);
                break;
            case TopicSubscribed stored:
                RouteStored(stored);
                break;
            case SweepRoutesTick:
                SweepRoutes();
                break;
            case StartLiveSession start:
                HandleStart(start, Sender, mayWait: true);
                break;
            case WakeLiveSession wake:
                Wake(wake.Connection);
                break;
            case ConnectionStopped stopped:
                EndDormant(stopped.Connection); // however a dormant session's client left (it has no will): it ends
                break;
            case ReturnSession back:
                if (_live.TryGet(back.ClientId, back.Incarnation, out var returning))
                {
                    returning.Session.Forward(back); // otherwise it ended, and its entity learns that (DelegationEnded)
                }

                break;
            case ShelvedSessionEnded ended:
                Ended(ended.Session);
                break;
            case WatchOwner watch:
                NewOwner(Sender, watch.Owner);
                break;
            case Terminated t:
                OwnerEnded(t.ActorRef);
                break;
            case OwnerStopped stopped:
                OwnerEnded(stopped.Owner);
                break;
            case AttachAbandoned abandoned:
                if (EndDormant(abandoned.Connection))
                {
                    break;
                }

                if (abandoned.Incarnation != 0)
                {
                    // It stopped while the dormant session it asked for was starting: that one ends with it.
                    if (_live.TryGet(abandoned.ClientId, abandoned.Incarnation, out var woken))
                    {
                        woken.Session.Tell(new ConnectionStopped(abandoned.Connection));
                    }
                }
                else if (_live.TryGetLatest(abandoned.ClientId, out var latestSession))
                {
                    latestSession.Tell(new ConnectionStopped(abandoned.Connection)); // ignored unless it is its connection
                }

                break;
            case Operations.GetSessionInfo info when _live.TryGetLatest(info.ClientId, out var latest) && _live.IsDormant(latest):
                Sender.Tell(new Operations.SessionInfo(info.ClientId, Exists: true, Connected: true, Persistent: false, SessionExpiry: 0,
                    Array.Empty<Operations.SubscriptionInfo>(), Queued: 0, Inflight: 0, _context.Nodes.Self));
                break;
            case Operations.GetSessionInfo info when _live.TryGetLatest(info.ClientId, out var latest):
                AskLive(latest, info, Sender);
                break;
            case Operations.GetSessionInfo info:
                _context.SessionRegion.Forward(info with { AtEntity = true }); // it ended meanwhile: the entity answers
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Hands each recipient its delivery; a recipient with no client id (the node's route) stands for every local
    /// subscriber of the topic (<see cref="LocalRouteTable{TWaiter}"/>). A QoS 1/2 publish asks every recipient to
    /// confirm that it stored the message; a live session is clean and keeps it in memory, so the message handed to it
    /// in process is as stored as it will be: the host confirms for all of them in one <see cref="DeliveryStored"/> (one
    /// message back per node, not one per subscriber). Except for a session whose queue is under pressure (its
    /// <see cref="LiveQueueGauge"/>): it gets the publisher's reply address and holds or refuses the delivery itself
    /// (SessionEntity.Flow.cs), or, once it refuses everything until it drains, is refused here in one answer per
    /// publish. A QoS 0 probe is confirmed by each subscriber's connection once written (back-pressure).
    /// <para>
    /// The topic entity counted the node's route as one recipient. The host's own answer makes up the difference (one
    /// more confirmation for each further local subscriber, or the one confirmation when none is left), and goes
    /// before any delivery, so that no subscriber's own confirmation can complete the publish early.
    /// </para>
    /// </summary>
    private void HandleNodeDeliver(NodeDeliver nd)
    {
        // Most deliveries name their recipients only; one with the node's route is expanded into a list of this host's.
        IReadOnlyList<NodeRecipient> recipients = nd.Recipients;
        var explicitCount = recipients.Count;
        var extra = 0; // confirmations beyond those the topic entity counted
        if (NamesRoute(recipients))
        {
            var expanded = _recipients;
            expanded.Clear();
            foreach (var r in nd.Recipients)
            {
                if (r.ClientId.Length != 0)
                {
                    expanded.Add(r);
                }
            }

            explicitCount = expanded.Count;
            var added = _routes.AddSubscribers(nd.Message.Topic, expanded, explicitCount);
            if (added < 0)
            {
                // A route this host does not hold (it gave it up a moment ago): the topic entity drops it.
                _context.TopicRegion.Tell(new UnsubscribeTopic(nd.Message.Topic, string.Empty, null, _context.Nodes.Self));
                added = 0;
            }

            extra = added - 1;
            recipients = expanded;
        }

        // An answer that raises the count must reach the publisher before any subscriber's own confirmation: then the
        // deliveries wait until it is sent.
        var deferSends = extra > 0 && nd.AckTo is not null;
        var confirmHere = nd.AckTo is not null && nd.Message.QoS != Protocol.MqttQoS.AtMostOnce;
        var confirmed = 0;
        var refused = 0;
        var sends = _sends;
        sends.Clear();
        for (var i = 0; i < recipients.Count; i++)
        {
            var recipient = recipients[i];
            var found = _live.TryGet(recipient.ClientId, recipient.Incarnation, out var live);
            if (found && confirmHere && live.Gauge.Refusing)
            {
                // Its queue refuses until it drains (a client that stopped reading): not taken, answered here.
                refused++;
                continue;
            }

            // A session whose queue is under pressure confirms (or holds) for itself.
            var here = found && confirmHere && live.Gauge.TryReserve(nd.Message.Payload.Length);
            var ackTo = here ? null : nd.AckTo;
            var deliver = new Deliver(recipient.ClientId, nd.Message, recipient.SharedFilter, nd.RetainedForFilter, ackTo, nd.AckId,
                nd.Origin, nd.PayloadId) { ConfirmedByHost = here };
            IActorRef to;
            if (found)
            {
                to = live.Session;
                confirmed += here ? 1 : 0;
            }
            else if (nd.BackIfGone)
            {
                to = _context.SessionRegion; // a persistent session's: its entity takes it back
            }
            else if (nd.FromEntity || i >= explicitCount)
            {
                // The session entity forwarded it to a live session that has ended since (or a route's subscriber is
                // ending): a clean session ends with its connection, and what was on its way to it is dropped
                // (confirmed, so no publisher waits for it).
                confirmed += deliver.AckTo is not null ? 1 : 0;
                continue;
            }
            else
            {
                to = _context.SessionRegion;
            }

            if (deferSends)
            {
                sends.Add((to, deliver));
            }
            else
            {
                to.Tell(deliver);
            }
        }

        if (nd.AckTo is { } replyTo)
        {
            if (extra > 0)
            {
                // It raises the count: sent the way the subscribers' own confirmations go (a plain send, not the
                // batching link), so that it arrives before any of them.
                replyTo.Tell(new DeliveryStored(nd.AckId, confirmed - extra));
            }
            else if (confirmed - extra != 0)
            {
                _context.Links.Tell(replyTo, new DeliveryStored(nd.AckId, confirmed - extra));
            }

            if (refused > 0)
            {
                _context.Metrics.RefusedQueueFullAdd(refused);
                _context.Links.Tell(replyTo, new DeliveryStored(nd.AckId, refused, DeliveryOutcome.Refused));
            }
        }

        foreach (var (to, deliver) in sends)
        {
            to.Tell(deliver);
        }

        sends.Clear();
    }

    private static bool NamesRoute(IReadOnlyList<NodeRecipient> recipients)
    {
        for (var i = 0; i < recipients.Count; i++)
        {
            if (recipients[i].ClientId.Length == 0)
            {
                return true;
            }
        }

        return false;
    }

    private void HandleAddRoute(AddLocalRoute add)
    {
        var waiter = (Sender, add.RequestId);
        switch (_routes.Add(add.Topic, add.ClientId, add.Incarnation, waiter, Environment.TickCount64, out var ensureId))
        {
            case LocalRouteTable<(IActorRef, long)>.AddOutcome.Routed:
                Sender.Tell(new TopicSubscribed(add.RequestId));
                break;
            case LocalRouteTable<(IActorRef, long)>.AddOutcome.Ensure:
                EnsureRoute(add.Topic, ensureId);
                break;
        }
    }

    /// <summary>Asks the topic's entity to store this node's route; its answer comes back as a <see cref="TopicSubscribed"/>.</summary>
    private void EnsureRoute(string topic, long ensureId) =>
        _context.TopicRegion.Tell(new SubscribeTopic(topic, string.Empty, null, ensureId, _context.Nodes.Self));

    private void RouteStored(TopicSubscribed stored)
    {
        if (_routes.Stored(stored.RequestId) is not { } waiters)
        {
            return;
        }

        foreach (var (session, requestId) in waiters)
        {
            session.Tell(new TopicSubscribed(requestId));
        }
    }

    private void SweepRoutes()
    {
        _dropped.Clear();
        _ensureAgain.Clear();
        _routes.Sweep(Environment.TickCount64, _dropped, _ensureAgain);
        foreach (var topic in _dropped)
        {
            _context.TopicRegion.Tell(new UnsubscribeTopic(topic, string.Empty, null, _context.Nodes.Self));
        }

        foreach (var (topic, ensureId) in _ensureAgain)
        {
            EnsureRoute(topic, ensureId);
        }
    }

    /// <summary>
    /// A management request for a client whose live session runs here. Not forwarded: a live session that is stopping
    /// (its connection just ended) drops what reaches it, and the asker would wait in vain. If it does not answer, the
    /// session region does (the client id's guard, or nothing).
    /// </summary>
    private void AskLive(IActorRef live, Operations.GetSessionInfo info, IActorRef replyTo)
    {
        var region = _context.SessionRegion;
        live.Ask<Operations.SessionInfo>(info, LiveAnswerTimeout).ContinueWith(asked =>
        {
            if (asked.IsCompletedSuccessfully)
            {
                replyTo.Tell(asked.Result);
            }
            else
            {
                region.Tell(info with { AtEntity = true }, replyTo);
            }
        }, TaskContinuationOptions.ExecuteSynchronously);
    }

    private static readonly TimeSpan LiveAnswerTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Starts the live session <paramref name="start"/> asks for, guarded by <paramref name="owner"/>; a clean one
    /// without a will waits dormant (<see cref="SessionDormant"/>) while <paramref name="mayWait"/>.
    /// </summary>
    private IActorRef? HandleStart(StartLiveSession start, IActorRef owner, bool mayWait)
    {
        var clientId = start.Attach.ClientId;
        if (mayWait && SessionLifecycle.StartsOnDemand(_context.Options.Sessions.StartCleanSessionsOnDemand, start.State is null, start.Attach.Info))
        {
            StartDormant(start, owner);
            return null;
        }

        // A persistent session (it comes with its state) stores what it is handed before it confirms: a gauge that
        // never reserves keeps this host from confirming for it.
        var gauge = start.State is null
            ? new LiveQueueGauge(_context.Options.Sessions.MaxQueuedMessages, _context.Options.Sessions.MaxQueuedBytes)
            : new LiveQueueGauge(0, 0);
        // Attached as a local system-service child: a live session is never deployed remotely, and this skips the remote
        // provider's deployment merge that ActorOf runs for every actor (see Transport.ConnectionParents).
        var props = start.State is { } state
            ? SessionEntity.FollowingProps(clientId, _context, start.Incarnation, owner, state, start.Present)
            : SessionEntity.LiveProps(clientId, _context, start.Incarnation, owner, gauge);
        var name = "s" + start.Incarnation.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var session = _shelves?.Attach(props, name) ?? ((ActorCell)Context).AttachChild(props, isSystemService: true, name);
        _live.Add(session, clientId, start.Incarnation, owner, gauge);
        WatchGuard(owner);
        session.Tell(start.Attach);
        if (Stopped(start.Attach.Connection))
        {
            // The connection stopped before this start arrived; its AttachAbandoned found no session here.
            session.Tell(new ConnectionStopped(start.Attach.Connection));
        }

        return session;
    }

#pragma warning disable CS0618 // read once, in process, for a connection that cannot be watched without the cost described in Locality
    private static bool Stopped(IActorRef connection) => connection is IInternalActorRef { IsTerminated: true };
#pragma warning restore CS0618

    /// <summary>
    /// A clean session that starts when its connection needs it: the connection is answered as attached, and this host
    /// keeps the start, counted as a session that is online (the gauges a live session reports for itself).
    /// </summary>
    private void StartDormant(StartLiveSession start, IActorRef owner)
    {
        _live.AddDormant(start, owner);
        WatchGuard(owner);
        _context.Metrics.SessionGauges(1, 1, 0, 0, 0);
        start.Attach.Connection.Tell(new SessionDormant(start.Incarnation));
        if (Stopped(start.Attach.Connection))
        {
            EndDormant(start.Attach.Connection); // its AttachAbandoned came before this start
        }
    }

    /// <summary>The connection of a dormant session needs it: it starts as it would have with the connection.</summary>
    private IActorRef? Wake(IActorRef connection)
    {
        if (!_live.RemoveDormant(connection, out var start, out var owner, out _))
        {
            return null; // not dormant here (it ended, or started already)
        }

        _context.Metrics.SessionGauges(-1, -1, 0, 0, 0); // the live session counts itself from now on
        return HandleStart(start, owner, mayWait: false); // guarded by the same owner: nothing to unwatch
    }

    /// <summary>The connection of a dormant session ended: its owner learns it as it would from the live session.</summary>
    private bool EndDormant(IActorRef connection)
    {
        if (!_live.RemoveDormant(connection, out var start, out var owner, out var ownerReleased))
        {
            return false;
        }

        _context.Metrics.SessionGauges(-1, -1, 0, 0, 0);
        if (ownerReleased)
        {
            Context.Unwatch(owner);
        }

        owner.Tell(new DelegationEnded(start.Attach.ClientId, start.Incarnation));
        return true;
    }

    /// <summary>
    /// A live session watches nothing (see SessionEntity.Become): it learns from this host that its guard stopped
    /// (OwnerStopped). A guard on another node is watched here (its node may fail); one on this node tells this host as
    /// it stops.
    /// </summary>
    private void WatchGuard(IActorRef owner)
    {
        if (!Locality.IsLocal(owner))
        {
            Context.Watch(owner);
        }
    }

    private void OwnerEnded(IActorRef owner)
    {
        foreach (var session in _live.OwnerEnded(owner))
        {
            // Each claims its client id again; a dormant one starts to do so (a rare event: its owner's node left).
            var live = _live.IsDormant(session) ? Wake(session) : session;
            live?.Tell(new OwnerStopped(owner));
        }
    }

    /// <summary>A live session claimed its client id from a new guard (<see cref="WatchOwner"/>).</summary>
    private void NewOwner(IActorRef session, IActorRef owner)
    {
        if (!_live.SetOwner(session, owner, out var released))
        {
            return; // ended meanwhile
        }

        if (released is not null)
        {
            Context.Unwatch(released);
        }

        WatchGuard(owner);
    }

    private void Ended(IActorRef session)
    {
        if (!_live.Remove(session, out var key, out var ownerReleased))
        {
            return;
        }

        if (ownerReleased)
        {
            Context.Unwatch(key.Owner);
        }

        // Its owner (the client id's registry, or a guard) learns it here; a guard on another node also watches the connection.
        key.Owner.Tell(new DelegationEnded(key.ClientId, key.Incarnation));

        _routes.RemoveSession(key.ClientId, key.Incarnation, Environment.TickCount64);
    }
}
