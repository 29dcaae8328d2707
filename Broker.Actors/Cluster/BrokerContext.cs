using Akka.Actor;
using Akka.Event;
using Broker.Configuration;
using Broker.Routing;

namespace Broker.Cluster;

/// <summary>
/// What the actors of one node share: the options, the two shard regions, this node's wildcard replica and index
/// actors, and the node's counters. Filled in once by <see cref="BrokerSystem"/> before any entity starts.
/// </summary>
public sealed class BrokerContext
{
    public BrokerContext(BrokerOptions options)
    {
        Options = options;
    }

    public BrokerOptions Options { get; }

    public WildcardIndex Wildcards { get; } = new();

    /// <summary>
    /// Completes once this node's replicas of the wildcard and retained indexes hold what the cluster knew when the
    /// node became a member (<see cref="SyncReplica"/>). Sharding may give the node topic shards as soon as it joins;
    /// a topic entity routes only after this, or it would find none of the cluster's wildcard subscribers and
    /// acknowledge a QoS 1/2 publish that reached nobody.
    /// </summary>
    public Task RoutesSynced => _routesSynced.Task;

    private readonly TaskCompletionSource _routesSynced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal void MarkRoutesSynced() => _routesSynced.TrySetResult();

    /// <summary>The nodes that live sessions run on, and their session hosts (see Sessions/SessionHost.cs).</summary>
    public NodeDirectory Nodes { get; } = new();

    public BrokerMetrics Metrics { get; } = new();

    /// <summary>This node's connection actors (a graceful stop tells each of them).</summary>
    public Sessions.ConnectionSet Connections { get; } = new();

    /// <summary>The parents the connection actors are created under.</summary>
    public Transport.ConnectionParents ConnectionParents { get; } = new();

    /// <summary>Watches for this process standing still (see <see cref="Fence"/>); none on a single node.</summary>
    public PauseWatch? Pauses { get; internal set; }

    private volatile bool _downed;

    /// <summary>
    /// This node may have been replaced by the others: it stood still past their limit, or it is leaving the cluster
    /// without being asked to (downed by its own split-brain resolver on the losing side or by the others, quarantined,
    /// fenced: the first phase of such a coordinated shutdown sets it). From then on its session and topic entities neither journal, route
    /// nor deliver: their successors may already run elsewhere, and the node is on its way out (see <see cref="Fence"/>).
    /// </summary>
    public bool Fenced => _downed || Pauses?.StoodStill == true;

    internal void Downed() => _downed = true;

    /// <summary>Batches deliveries and confirmations to other nodes (see <see cref="NodeLinks"/>).</summary>
    public NodeLinks Links { get; } = new();

    /// <summary>Authentication, ACLs and the failure throttle (Broker.Actors/Security); open until the server sets it.</summary>
    public Security.BrokerSecurity Security { get; internal set; } = Broker.Security.BrokerSecurity.Open;

    public IActorRef SessionRegion { get; internal set; } = ActorRefs.Nobody;

    public IActorRef TopicRegion { get; internal set; } = ActorRefs.Nobody;

    public IActorRef WildcardIndexActor { get; internal set; } = ActorRefs.Nobody;

    public IActorRef RetainedIndexActor { get; internal set; } = ActorRefs.Nobody;

    /// <summary>This node's <see cref="Persistence.StoredEntityDirectory"/> of sessions: which hosted client ids have stored state.</summary>
    public IActorRef SessionDirectory { get; internal set; } = ActorRefs.Nobody;

    /// <summary>Reads stored sessions' snapshots and events in batches (Storage:ReadSessionsInBatches); Nobody when off.</summary>
    public IActorRef StoredStateReader { get; internal set; } = ActorRefs.Nobody;

    /// <summary>This node's <see cref="Persistence.StoredEntityDirectory"/> of topics.</summary>
    public IActorRef TopicDirectory { get; internal set; } = ActorRefs.Nobody;

    /// <summary>This node's <see cref="Persistence.SessionIndexWriter"/> (wildcard routes, expiry deadlines, retained topics).</summary>
    public IActorRef SessionIndexWriter { get; internal set; } = ActorRefs.Nobody;

    /// <summary>This node's <see cref="Persistence.SnapshotTrimmer"/>: deletes what each stored snapshot covers.</summary>
    public IActorRef SnapshotTrimmer { get; internal set; } = ActorRefs.Nobody;

    /// <summary>The topic region's message extractor.</summary>
    public TopicExtractor TopicExtractor { get; internal set; } = new(100);

    /// <summary>The shard a topic's entity belongs to.</summary>
    public string TopicShardOf(string topic) =>
        ((Akka.Cluster.Sharding.IMessageExtractor)TopicExtractor).ShardId(topic, null);

    /// <summary>The session region's message extractor (shared so that the shard of a client id is computed one way).</summary>
    public ClientIdExtractor SessionExtractor { get; internal set; } = new(100);

    /// <summary>The shard a client id's session belongs to.</summary>
    public string SessionShardOf(string clientId) =>
        ((Akka.Cluster.Sharding.IMessageExtractor)SessionExtractor).ShardId(clientId, null);

    /// <summary>This node's <see cref="Operations.ClientRegistryActor"/> (connected clients, for the management API).</summary>
    public IActorRef ClientRegistry { get; internal set; } = ActorRefs.Nobody;

    /// <summary>The clients connected to this node (connections enter and leave it themselves).</summary>
    public Operations.ClientDirectory Clients { get; } = new();

    /// <summary>
    /// One logger shared by every connection actor of the node, and one by every session entity: a logger per
    /// actor (Context.GetLogger) costs each idle client two adapters and their source strings. The log class (the
    /// category in the host's log) stays the actor's type; the lines name the client id themselves.
    /// </summary>
    public ILoggingAdapter ConnectionLog { get; internal set; } = NoLogger.Instance;

    public ILoggingAdapter SessionLog { get; internal set; } = NoLogger.Instance;
}

/// <summary>Node-wide counters (lock-free increments), read at scrape time (see BrokerMetrics.Operations.cs).</summary>
public sealed partial class BrokerMetrics
{
    private long _connections;
    private long _messagesIn;
    private long _messagesOut;
    private long _droppedQueueFull;
    private long _expired;
    private long _protocolErrors;
    private long _durableAckTimeouts;
    private long _qos2DuplicatesSuppressed;
    private long _storageFailures;
    private long _sessionStartsFromStorage;
    private long _sessionStartsFromKept;
    private long _droppedSlowConsumer;
    private long _droppedNewest;
    private long _droppedOverflow;
    private long _refusedQueueFull;
    private long _publisherHolds;
    private long _readPauses;
    private long _authFailures;
    private long _aclDeniedPublish;
    private long _aclDeniedSubscribe;
    private long _aclDeniedDelivery;
    private long _rateLimitPauses;
    private long _limitRejections;

    public long Connections => Interlocked.Read(ref _connections);

    public long MessagesIn => Interlocked.Read(ref _messagesIn);

    public long MessagesOut => Interlocked.Read(ref _messagesOut);

    /// <summary>QoS 1/2 messages a full session queue dropped, all reasons together.</summary>
    public long DroppedQueueFull => DroppedOldest + DroppedNewest + DroppedOverflow;

    /// <summary>Queued messages dropped to make room (Sessions:QueueFullPolicy drop-oldest).</summary>
    public long DroppedOldest => Interlocked.Read(ref _droppedQueueFull);

    /// <summary>New messages not queued because the queue was full (Sessions:QueueFullPolicy drop-newest).</summary>
    public long DroppedNewest => Interlocked.Read(ref _droppedNewest);

    /// <summary>Messages nobody could be made to wait for (no publisher waiting on them) at twice a queue's bounds.</summary>
    public long DroppedOverflow => Interlocked.Read(ref _droppedOverflow);

    /// <summary>Deliveries a full queue refused after holding its publisher for Sessions:MaxPublisherHold (not acknowledged as taken).</summary>
    public long RefusedQueueFull => Interlocked.Read(ref _refusedQueueFull);

    /// <summary>Times a publisher started waiting on a subscriber's full queue (its PUBACK held, its socket not read).</summary>
    public long PublisherHolds => Interlocked.Read(ref _publisherHolds);

    public void DroppedNewestAdd(long n) => Interlocked.Add(ref _droppedNewest, n);

    public void DroppedOverflowAdd(long n) => Interlocked.Add(ref _droppedOverflow, n);

    public void RefusedQueueFullAdd(long n) => Interlocked.Add(ref _refusedQueueFull, n);

    public void PublisherHeld() => Interlocked.Increment(ref _publisherHolds);

    public long Expired => Interlocked.Read(ref _expired);

    public long ProtocolErrors => Interlocked.Read(ref _protocolErrors);

    /// <summary>QoS 1/2 publishes not acknowledged because storing them for every subscriber took too long.</summary>
    public long DurableAckTimeouts => Interlocked.Read(ref _durableAckTimeouts);

    public void DurableAckTimeout() => Interlocked.Increment(ref _durableAckTimeouts);

    /// <summary>QoS 2 deliveries a session had taken already (routed again after its publisher's session moved): acknowledged, not stored again.</summary>
    public long Qos2DuplicatesSuppressed => Interlocked.Read(ref _qos2DuplicatesSuppressed);

    public void Qos2DuplicateSuppressed() => Interlocked.Increment(ref _qos2DuplicatesSuppressed);

    /// <summary>Journal writes or recoveries that failed (the entity stopped and recovers on its next message).</summary>
    public long StorageFailures => Interlocked.Read(ref _storageFailures);

    public void StorageFailure() => Interlocked.Increment(ref _storageFailures);

    /// <summary>Stored sessions that started (woken, resumed, moved) by replaying their snapshot and events from storage.</summary>
    public long SessionStartsFromStorage => Interlocked.Read(ref _sessionStartsFromStorage);

    /// <summary>Passivated sessions that started again from the state they left in this node's memory (storage not read).</summary>
    public long SessionStartsFromKept => Interlocked.Read(ref _sessionStartsFromKept);

    public void SessionStarted(bool fromKept) =>
        Interlocked.Increment(ref fromKept ? ref _sessionStartsFromKept : ref _sessionStartsFromStorage);

    /// <summary>QoS 0 messages not sent because the client's socket was not taking data (a slow or dead consumer).</summary>
    public long DroppedSlowConsumer => Interlocked.Read(ref _droppedSlowConsumer);

    public void DroppedSlowConsumerAdd() => Interlocked.Increment(ref _droppedSlowConsumer);

    /// <summary>Times a publisher's socket stopped being read because routing fell behind (back-pressure).</summary>
    public long ReadPauses => Interlocked.Read(ref _readPauses);

    public void ReadPaused() => Interlocked.Increment(ref _readPauses);

    /// <summary>CONNECTs refused for wrong or missing credentials (CONNACK 0x04/0x05, v5 0x86/0x87).</summary>
    public long AuthFailures => Interlocked.Read(ref _authFailures);

    public void AuthFailure() => Interlocked.Increment(ref _authFailures);

    /// <summary>PUBLISH packets refused by the ACL (v5 0x87; 3.1.1 acknowledged and dropped).</summary>
    public long AclDeniedPublish => Interlocked.Read(ref _aclDeniedPublish);

    public void AclDenyPublish() => Interlocked.Increment(ref _aclDeniedPublish);

    /// <summary>Topic filters of SUBSCRIBE packets refused by the ACL (SUBACK 0x80 / v5 0x87).</summary>
    public long AclDeniedSubscribe => Interlocked.Read(ref _aclDeniedSubscribe);

    public void AclDenySubscribe() => Interlocked.Increment(ref _aclDeniedSubscribe);

    /// <summary>Messages not delivered because the receiving client may not read their topic.</summary>
    public long AclDeniedDelivery => Interlocked.Read(ref _aclDeniedDelivery);

    public void AclDenyDelivery() => Interlocked.Increment(ref _aclDeniedDelivery);

    /// <summary>Times a client's reading was paused because it published faster than Mqtt:MaxPublishRate.</summary>
    public long RateLimitPauses => Interlocked.Read(ref _rateLimitPauses);

    public void RateLimitPaused() => Interlocked.Increment(ref _rateLimitPauses);

    /// <summary>PUBLISH or SUBSCRIBE refused by Mqtt:MaxTopicLevels or Mqtt:MaxSubscriptionsPerClient.</summary>
    public long LimitRejections => Interlocked.Read(ref _limitRejections);

    public void LimitRejected() => Interlocked.Increment(ref _limitRejections);

    /// <summary>Reserves a connection slot; false when the node is at its limit.</summary>
    public bool TryOpenConnection(int max)
    {
        if (Interlocked.Increment(ref _connections) > max)
        {
            Interlocked.Decrement(ref _connections);
            return false;
        }

        return true;
    }

    public void CloseConnection() => Interlocked.Decrement(ref _connections);

    public void MessageIn() => Interlocked.Increment(ref _messagesIn);

    public void MessageOut() => Interlocked.Increment(ref _messagesOut);

    public void DroppedOldestAdd(long n) => Interlocked.Add(ref _droppedQueueFull, n);

    public void ExpiredAdd() => Interlocked.Increment(ref _expired);

    public void ProtocolError() => Interlocked.Increment(ref _protocolErrors);
}
