using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Broker.Cluster;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Sessions;

/// <summary>
/// The session of one client id, sharded by client id so that it is unique in the cluster (takeover), has a home
/// while the client is offline, and moves to a surviving node after a failure. "The Session State in the Server
/// consists of: the existence of a Session; the Client's subscriptions; QoS 1 and QoS 2 messages which have been sent
/// to the Client but not completely acknowledged; QoS 1 and QoS 2 messages pending transmission to the Client; QoS 2
/// messages received from the Client but not completely acknowledged; the Will Message and the Will Delay Interval;
/// the Session Expiry Interval" (MQTT-v5.0 4.1).
/// <para>
/// Every state change is an <see cref="ISessionEvent"/> applied by <see cref="Apply"/>. A persistent session
/// (session expiry above 0) journals the event before acting on it; a clean session applies it in memory only.
/// The connection actor owns the socket; this entity decides what to send and when.
/// </para>
/// </summary>
public sealed partial class SessionEntity : LazyStashActor
{
    private readonly string _clientId;
    private readonly string _shardId;
    private readonly BrokerContext _context;
    private ILoggingAdapter _log => _context.SessionLog;

    // Shared and empty until the first subscription (only read while so: Clear and Remove on it change nothing).
    private static readonly Dictionary<string, SubscriptionOptions> NoSubscriptions = new(StringComparer.Ordinal);
    private Dictionary<string, SubscriptionOptions> _subscriptions = NoSubscriptions;

    private Dictionary<string, SubscriptionOptions> OwnSubscriptions =>
        ReferenceEquals(_subscriptions, NoSubscriptions) ? _subscriptions = new(StringComparer.Ordinal) : _subscriptions;
    // The queue, the in-flight window and the messages' positions: created with the first message queued or sent
    // (reads of an idle session's counts and positions see zero without creating them).
    private OutboundFlow? _outFlow;
    private int _inflightCapacity; // the window's, also before it exists

    private OutboundFlow _out => _outFlow ??= new OutboundFlow(NewQueue(_context.Options.Sessions), new InflightWindow(_inflightCapacity));

    private MessageQueue _queue => _out.Queue;

    private InflightWindow _inflight => _out.Inflight;

    private long NextSeq => _outFlow?.NextSeq ?? 0;

    private int QueuedCount => _outFlow?.Queue.Count ?? 0;

    private int InflightCount => _outFlow?.Inflight.Count ?? 0;

    private JournalLink? _journalLink; // created to ask for or write stored state: a live session never does

    private JournalLink _journal =>
        _journalLink ??= new JournalLink(Context, _context, _follows ? ActorRefs.Nobody : _context.SessionDirectory, "session-", _clientId, _shardId);

    private uint _expirySeconds;
    private long _detachedAtMs; // when the client left (0 while connected or unknown)
    private MqttWill? _will;
    private bool _persistent;
    private bool _hasState;
    private bool _journaled; // something of this session is in the journal (recovered or written)
    private bool _recovering;

    // What only storing, recovering, payload references, waking or rerouting needs: created with the first of them.
    private SessionStorageState? _stored;

    private SessionStorageState Stored => _stored ??= new();

    private bool _ending;

    private IActorRef? _connection;
    private MqttProtocolVersion _version;
    private long _registrySeq; // the last message the client id's registry handed to this entity (ClientIdRegistry)

    public SessionEntity(string clientId, BrokerContext context)
        : this(clientId, context, 0, null)
    {
    }

    /// <summary>With an <paramref name="owner"/>: a live session beside its connection (SessionEntity.Live.cs).</summary>
    public SessionEntity(string clientId, BrokerContext context, long incarnation, IActorRef? owner, LiveQueueGauge? gauge = null,
        byte[]? state = null, bool present = false)
    {
        _gauge = gauge;
        _clientId = clientId;
        _isLive = owner is not null;
        _follows = state is not null;
        _startPresent = present;
        _incarnation = incarnation;
        _owner = owner;
        _context = context;
        _shardId = context.SessionShardOf(clientId);
        _inflightCapacity = context.Options.Sessions.MaxInflight;

        if (_follows)
        {
            // A persistent session handed over by its entity (SessionEntity.Follow.cs): it starts from that state.
            _handedOver = true;
            RestoreKept(state!);
            return;
        }

        if (_isLive)
        {
            // A live session is clean: nothing of it is stored. Its guard (maybe on another node) is watched by the
            // session host, which tells it when the guard stops (OwnerStopped).
            Become(Behaviour.Active);
            return;
        }

        // Starting: ask this node's directory whether anything is stored for the client id. Only then is the journal
        // read; a clean session never touches it.
        _journal.AskStored();
    }

    // Behaviours are plain switches (UntypedActor): a ReceiveActor keeps a delegate per Receive<T> per behaviour for
    // every session (docs/benchmarks.md, memory per idle connection). The current one is a field (see Become below),
    // starting with Starting.
    protected override void OnReceive(object message)
    {
        if (message is RegistryForward forwarded)
        {
            // Handed on by the client id's registry: this entity holds the id until it stops (see PostStop).
            _registrySeq = Math.Max(_registrySeq, forwarded.Seq);
            message = forwarded.Message;
        }

        switch (_behaviour)
        {
            case Behaviour.Starting:
                Starting(message);
                break;
            case Behaviour.Recovering:
                Recovering(message);
                break;
            case Behaviour.FetchingPayloads:
                FetchingPayloads(message);
                break;
            case Behaviour.Active:
                Active(message);
                break;
        }
    }

    private enum Behaviour : byte
    {
        Starting,
        Recovering,
        FetchingPayloads,
        Active,
    }

    /// <summary>
    /// Switches behaviour for the next message. Not Akka's Become: that moves the actor's state into a larger object with
    /// a behaviour stack and three watch collections (about 600 bytes per actor), kept for the actor's life. So does a
    /// watch, so a live session watches nothing: its connection and it tell each other when they stop, and its host
    /// watches its guard.
    /// </summary>
    private void Become(Behaviour behaviour) => _behaviour = behaviour;

    private void Starting(object message)
    {
        if (message is StoredAnswer answer)
        {
            if (answer is { Stored: true, State: { } kept })
            {
                RestoreKept(kept);
            }
            else if (answer.Stored && !_context.StoredStateReader.IsNobody())
            {
                _context.StoredStateReader.Tell(new ReadStoredState("session-" + _clientId));
                Become(Behaviour.Recovering);
            }
            else if (_journal.RecoverIfStored(answer))
            {
                Become(Behaviour.Recovering);
            }
            else
            {
                _journalLink = null; // nothing started: the link holds nothing until the first write
                BecomeActive();
            }
        }
        else
        {
            Stash.Stash();
        }
    }


    private Behaviour _behaviour; // an enum, not a delegate: one object less per session

    private ActorTimers _timers; // a struct: allocates only while a timer runs

    private ref ActorTimers Timers => ref _timers;

    public static Props Props(string clientId, BrokerContext context) =>
        FactoryProps.Of((clientId, context), static s => new SessionEntity(s.clientId, s.context), FactoryProps.Lean);

    private bool Connected => _connection is not null;

    /// <summary>Applies one event to the in-memory state; the only place state changes (also during recovery).</summary>
    private void Apply(ISessionEvent e)
    {
        switch (e)
        {
            case SessionOpened o:
                if (o.NextSeq is { } next && next != NextSeq)
                {
                    _out.NextSeq = next;
                }

                _expirySeconds = o.ExpirySeconds;
                _detachedAtMs = 0;
                _will = o.Will;
                _hasState = true;
                break;
            case SessionCleared:
                foreach (var m in _outFlow?.Queue.Items ?? [])
                {
                    RefRemoved(m);
                }

                foreach (var i in _outFlow?.Inflight.Entries ?? [])
                {
                    RefRemoved(i.Message);
                }

                _subscriptions.Clear();
                _outFlow?.Clear();
                _inFlow?.Clear();
                _order?.Clear();
                _seen?.Clear();
                _will = null;
                _hasState = false;
                break;
            case SubscriptionAdded a:
                OwnSubscriptions[a.Filter] = a.Options;
                break;
            case SubscriptionRemoved r:
                _subscriptions.Remove(r.Filter);
                break;
            case MessageQueued q:
                if (q.Origin is not null)
                {
                    (_seen ??= new()).Record(q.Message.Message.PublisherClientId, q.Origin);
                }

                // Recovery drops nothing: its queue holds the messages that were in flight too (no send is journaled),
                // so the oldest would be the wrong ones; what drop-oldest removed comes back instead.
                var dropped = _out.Enqueue(q.Message, mayDrop: !_recovering, out var queued);
                RefAdded(queued);
                if (dropped is not null)
                {
                    foreach (var d in dropped)
                    {
                        RefRemoved(d);
                    }

                    if (!_recovering)
                    {
                        _context.Metrics.DroppedOldestAdd(dropped.Count);
                        Dropped("dropped (drop-oldest)", dropped.Count);
                    }
                }

                break;
            case QueuedRefsDropped d:
                DropRefs(d);
                break;
            case MessageDiscarded d:
                if (_out.Discard(d.Seq) is { } discarded)
                {
                    RefRemoved(discarded);
                }

                break;
            case MessageReleased r:
                _out.Release(r.PacketId, _recovering);
                break;
            case MessageCompleted c:
                if (_out.Complete(c.PacketId, _recovering) is { } completed)
                {
                    RefRemoved(completed);
                }

                break;
            case QueueHeadDiscarded: // older journals
                RefRemoved(_queue.Dequeue());
                break;
            case MessageSent s: // older journals
                _out.SentLegacy(s.PacketId);
                break;
            case InboundQos2Pending or InboundQos2Stored or InboundQos2Released:
                Inbound.Apply(e);
                break;
            case SessionDetached d:
                _detachedAtMs = d.AtUnixMs;
                _out.SentBelow = d.SentBelow ?? _out.SentBelow;
                break;
            case SharedMessagesHandedBack h:
                foreach (var removed in _queue.RemoveWhere(m => m.SharedFilter == h.SharedFilter))
                {
                    RefRemoved(removed);
                }

                foreach (var removed in _inflight.RemoveWhere(m => m.Message.SharedFilter == h.SharedFilter && !m.Released))
                {
                    RefRemoved(removed.Message);
                }

                break;
            case SessionSettingsChanged c:
                _expirySeconds = c.ExpirySeconds;
                if (c.WillCleared)
                {
                    _will = null;
                }

                break;
        }
    }

    private void OnRecovered()
    {
        if (!_hasState)
        {
            return;
        }

        // A persistent session came back (after passivation, a restart or a failover): make sure every node routes
        // to it again, and start its expiry clock, since nothing is connected yet (SessionEntity.Passivation.cs:
        // it leaves memory again once idle).
        // Exact routes are in their topic entities' journals (written before the SUBACK), so only wildcard routes,
        // which DistributedData keeps in memory, are announced again (the stored ones were also loaded at start-up,
        // so the index leaves one it holds as it is).
        foreach (var (filter, _) in _handedOver ? NoSubscriptions : _subscriptions)
        {
            if (!MqttTopic.HasWildcards(MqttTopic.TryParseShared(filter, out _, out var inner) ? inner : filter))
            {
                continue;
            }

            var requestId = ++_nextRequestId;
            (_wakeRegistrations ??= new()).Add(requestId);
            Register(filter, requestId, renew: true);
        }

        _handedOver = false;
        if (Connected)
        {
            // Handed back by the session that ran beside its connection: still attached (a takeover follows), or
            // with how its client left, carried out now.
            RouteRecoveredInbound();
            CarryOutReturnedLeaving();
            return;
        }

        // Expiry counts from when the client left, which may have been before this node stopped; a session that
        // was connected when its node died counts from now.
        if (SessionLifecycle.RemainingAfterRecovery(_expirySeconds, _detachedAtMs, NowMs) is not { } remaining)
        {
            EndSession("expired while no node held it");
            return;
        }

        ScheduleExpiry(remaining);
        RouteRecoveredInbound();
        ArmPassivation();
    }

    private HashSet<long>? _wakeRegistrations { get => _stored?.WakeRegistrations; set { if (_stored is not null || value is not null) Stored.WakeRegistrations = value; } }

    private List<IActorRef>? _wakers { get => _stored?.Wakers; set { if (_stored is not null || value is not null) Stored.Wakers = value; } }

    private void AnswerWakersWhenRouted()
    {
        if (_wakeRegistrations?.Count > 0 || _wakers is null)
        {
            return;
        }

        foreach (var waker in _wakers)
        {
            waker.Tell(new SessionWoken(_clientId));
        }

        _wakers.Clear();
    }

    private void ScheduleExpiry(TimeSpan after)
    {
        if (_expirySeconds == uint.MaxValue)
        {
            return;
        }

        Timers.StartSingleTimer(ExpireTimer.Instance, ExpireTimer.Instance, after);
    }

    /// <summary>Ends the session: routes stop, the journal is deleted, the entity stops.</summary>
    private void EndSession(string why)
    {
        if (_ending)
        {
            return;
        }

        _ending = true;
        if (_journaled || _expirySeconds > 0)
        {
            // Clean sessions end with their connection (already logged there); persistent ones are worth a line.
            _log.Info("Session {ClientId} ended ({Reason}); {Queued} queued and {Inflight} in-flight messages discarded",
                _clientId, why, QueuedCount, InflightCount);
        }
        PublishWill();
        foreach (var (filter, _) in _subscriptions)
        {
            Unregister(filter);
            HandBackShared(filter, store: false);
        }

        _subscriptions.Clear();
        _outFlow?.Clear();
        AnswerHeld(ended: true);
        AbandonAwaitingHeld();
        var released = _payloadRefs?.Keys.ToList();
        _payloadRefs = null;
        Timers.CancelAll();

        // After every pending write: delete the journal and snapshots (then the payloads it referenced are released), then leave.
        var indexed = !_isLive && _journaled;
        DeleteJournal(() =>
        {
            ReleaseRefs(released);
            if (indexed)
            {
                // After the journal: a crash in between leaves rows whose session is gone, which the next wake deletes.
                IndexWrite(Persistence.SessionIndexChange.RemoveSession(_clientId));
            }

            Leave();
        });
    }

    private sealed class PublishWillTimer
    {
        public static readonly PublishWillTimer Instance = new();
    }

    private sealed class ExpireTimer
    {
        public static readonly ExpireTimer Instance = new();
    }
}

/// <summary>
/// The session region's hand-off stop message: the shard is moving to another node. The entity stops once its
/// pending writes are stored (a PoisonPill could cut them off).
/// </summary>
public sealed class SessionHandOff : INoSerializationVerificationNeeded
{
    public static readonly SessionHandOff Instance = new();
}
