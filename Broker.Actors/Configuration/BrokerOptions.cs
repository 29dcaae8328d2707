namespace Broker.Configuration;

/// <summary>
/// Every setting of a broker node, bound from the "Mqtt", "Sessions", "Node", "Storage", "Cluster" and "Auth" configuration sections
/// (appsettings.json, BROKER__SECTION__KEY environment variables, --Section:Key=value flags). The names are a
/// contract used by tests, scripts and operators: see README.md "Configuration".
/// </summary>
public sealed record BrokerOptions
{
    public MqttOptions Mqtt { get; init; } = new();

    /// <summary>The hold in effect: <c>Sessions:MaxPublisherHold</c>, or unset 5 s and at most half the durable-ack timeout.</summary>
    public double PublisherHoldSeconds => Sessions.MaxPublisherHold ?? Math.Min(5, Mqtt.DurableAckTimeout / 2.0);

    public SessionOptions Sessions { get; init; } = new();

    public NodeOptions Node { get; init; } = new();

    public StorageOptions Storage { get; init; } = new();

    public ClusterOptions Cluster { get; init; } = new();

    public MetricsOptions Metrics { get; init; } = new();

    public SysOptions Sys { get; init; } = new();

    public ManagementOptions Management { get; init; } = new();

    public AuthOptions Auth { get; init; } = new();
}

/// <summary>The MQTT listener and the limits it announces to clients.</summary>
public sealed record MqttOptions
{
    public string Address { get; init; } = "127.0.0.1";

    public int Port { get; init; } = 1883;

    /// <summary>
    /// Largest packet accepted from a client, in bytes (announced as v5 Maximum Packet Size). Default: the protocol's
    /// own limit (a Remaining Length of 268,435,455), as Mosquitto and HiveMQ do. A packet's bytes are buffered as
    /// they arrive, never allocated from its declared length (README "Large payloads").
    /// </summary>
    public int MaxPacketSize { get; init; } = MqttProtocolMaxPacketSize;

    /// <summary>
    /// The largest packet MQTT can express: a Remaining Length of 268,435,455 (four bytes of variable byte integer)
    /// plus the fixed header's first byte and those four bytes.
    /// </summary>
    public const int MqttProtocolMaxPacketSize = 268_435_455 + 5;

    /// <summary>How many unacknowledged QoS 1/2 PUBLISH a client may send at once (v5 Receive Maximum).</summary>
    public int ReceiveMaximum { get; init; } = 1024;

    public int MaxConnections { get; init; } = 100_000;

    /// <summary>Highest topic alias a v5 client may use towards the broker.</summary>
    public int TopicAliasMaximum { get; init; } = 64;

    /// <summary>When above 0, overrides the client's keep alive (v5 Server Keep Alive).</summary>
    public int ServerKeepAlive { get; init; }

    /// <summary>
    /// When above 0, the longest keep alive a client may have: longer ones and 0 (none) are lowered to it, v5 clients are
    /// told in CONNACK (Server Keep Alive), 3.1.1 clients are held to it (see <see cref="Channel.KeepAlivePolicy"/>).
    /// </summary>
    public int MaxKeepAlive { get; init; }

    /// <summary>
    /// Seconds a QoS 1/2 publish may wait for every subscriber's session to store it. Past that the publisher hears
    /// v5 reason 0x80 (3.1.1: the connection is closed) instead of an acknowledgement it could not be given.
    /// </summary>
    public int DurableAckTimeout { get; init; } = 15;

    /// <summary>Seconds a new connection has to send CONNECT before it is closed.</summary>
    public int ConnectTimeout { get; init; } = 10;

    /// <summary>PUBLISH packets per second one client may send (token bucket); 0 means unlimited. Over it, reading pauses.</summary>
    public int MaxPublishRate { get; init; }

    /// <summary>Subscriptions one session may hold; a SUBSCRIBE beyond it is refused (v5 0x97, 3.1.1 0x80). 0: unlimited.</summary>
    public int MaxSubscriptionsPerClient { get; init; }

    /// <summary>Most levels a topic name or filter may have (EMQX's max_topic_levels is 128); 0: unlimited.</summary>
    public int MaxTopicLevels { get; init; } = 128;

    /// <summary>The MQTT-over-TLS listener.</summary>
    public TlsOptions Tls { get; init; } = new();

    /// <summary>The MQTT-over-WebSocket listeners (ws and wss).</summary>
    public WebSocketOptions WebSocket { get; init; } = new();
}

/// <summary>Per-session limits and expiry.</summary>
public sealed record SessionOptions
{
    /// <summary>
    /// Messages queued per session beyond the in-flight window: the queue's high-water mark. What happens above it is
    /// <see cref="QueueFullPolicy"/>'s choice.
    /// </summary>
    public int MaxQueuedMessages { get; init; } = 1000;

    /// <summary>Payload bytes queued per session beyond the in-flight window: a second high-water mark beside the count.</summary>
    public long MaxQueuedBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// What a full queue does with a new QoS 1/2 message: "backpressure" (hold the publishers' acknowledgements and
    /// stop reading them until the queue drains, refuse after <see cref="MaxPublisherHold"/>), "drop-oldest" or
    /// "drop-newest" (acknowledge and drop, counted: what Mosquitto, EMQX and VerneMQ do).
    /// </summary>
    public string QueueFullPolicy { get; init; } = "backpressure";

    /// <summary>
    /// Seconds a publisher may be held by a full queue ("backpressure") before that queue refuses: v5 publishers get
    /// PUBACK/PUBREC 0x97, 3.1.1 publishers (no refusal code) are disconnected without acknowledgement. Unset: 5 s,
    /// or half of <c>Mqtt:DurableAckTimeout</c> when that is shorter (see <see cref="BrokerOptions.PublisherHoldSeconds"/>).
    /// </summary>
    public double? MaxPublisherHold { get; init; }

    /// <summary>The parsed <see cref="QueueFullPolicy"/> (validated at start-up).</summary>
    public global::Broker.Sessions.QueueFullPolicy Policy => global::Broker.Sessions.QueueFullPolicies.Parse(QueueFullPolicy) ?? global::Broker.Sessions.QueueFullPolicy.Backpressure;

    /// <summary>Unacknowledged QoS 1/2 messages in flight to one client (capped by the client's receive maximum).</summary>
    public int MaxInflight { get; init; } = 32;

    /// <summary>Upper bound on a v5 client's Session Expiry Interval, in seconds.</summary>
    public long MaxSessionExpiry { get; init; } = 7 * 24 * 3600;

    /// <summary>Expiry of a v3.1.1 clean-session-0 session after its client left, in seconds (EMQX uses 2 hours).</summary>
    public long PersistentSessionExpiry { get; init; } = 2 * 3600;

    /// <summary>
    /// A clean session (it ends with its connection) runs on the node of its connection, and publishes reach it there
    /// in one message per node; its session entity (sharded by client id) only guards the client id. Off: every session
    /// runs in its entity, wherever sharding placed it (one more network hop per delivery in a cluster).
    /// </summary>
    public bool CleanSessionsOnConnectionNode { get; init; } = true;

    /// <summary>
    /// A clean session (beside its connection, <see cref="CleanSessionsOnConnectionNode"/>) starts when its client first
    /// needs it (a subscription, a QoS 2 message; at once when the CONNECT carries a will): until then the connection
    /// alone holds the client, which costs about a quarter less memory per idle client that only publishes. Off: it
    /// starts with the connection.
    /// </summary>
    public bool StartCleanSessionsOnDemand { get; init; } = true;

    /// <summary>
    /// A persistent session whose client connects to another node than its session entity's runs on the connection's
    /// node while the client is connected (its state handed over, the journal written from there) and goes back to its
    /// entity when the client leaves or connects elsewhere. Off: it always runs in its entity.
    /// </summary>
    public bool PersistentSessionsFollowClient { get; init; } = true;

    /// <summary>
    /// An offline persistent session that nobody addresses for this many seconds leaves memory; a delivery, a
    /// reconnect or its expiry brings it back from storage. 0: offline sessions stay in memory until they expire.
    /// </summary>
    public int PassivateAfterSeconds { get; init; } = 30;

    /// <summary>
    /// A passivated session whose state (serialized as its snapshot) takes at most this many bytes leaves it in the
    /// node's memory, and its next start on this node (a resume, a delivery, its expiry) runs from it instead of
    /// reading storage. 0: every passivated session is recovered from storage.
    /// </summary>
    public int PassivatedStateBytes { get; init; } = 256;

    /// <summary>The node's memory for passivated sessions' states, in megabytes, in all; past it they recover from storage.</summary>
    public int PassivatedStateMegabytes { get; init; } = 64;
}

/// <summary>Where the node keeps its files.</summary>
public sealed record NodeOptions
{
    public string DataDir { get; init; } = "./data";
}

/// <summary>Where sessions, retained messages and routes are journaled (Akka.Persistence.Sql).</summary>
public sealed record StorageOptions
{
    /// <summary>"sqlite" (default: a file under Node:DataDir, for a single node) or "postgresql" (shared by a cluster).</summary>
    public string Provider { get; init; } = "sqlite";

    /// <summary>ADO.NET connection string; empty for SQLite means "Data Source={Node:DataDir}/broker.db".</summary>
    public string ConnectionString { get; init; } = "";

    /// <summary>
    /// Stored sessions starting together (a reconnect storm after a restart) read their snapshots and events in one
    /// statement per batch (<see cref="Persistence.StoredStateReader"/>); false: each through Akka.Persistence's own recovery.
    /// </summary>
    public bool ReadSessionsInBatches { get; init; } = true;

    /// <summary>Journal events per persistent entity between snapshots.</summary>
    public int SnapshotEvery { get; init; } = 1000;

    /// <summary>
    /// Payload bytes a session journals between snapshots at most (unless its own state is larger: then twice that),
    /// so that large messages flowing through a connected session do not pile up in its journal until SnapshotEvery.
    /// </summary>
    public long SnapshotEveryBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>
    /// A QoS 1/2 publish routed to 2 or more subscribers with a payload of at least this many bytes is journaled once,
    /// by its topic entity, and persistent sessions journal only a reference to it (README "Storage").
    /// </summary>
    public int SharedPayloadMinBytes { get; init; } = 256;

    /// <summary>
    /// Seconds a cluster member on PostgreSQL may fail to reach the database while another member still reaches it,
    /// before it leaves the cluster (coordinated shutdown, exit code 3, restarted by its supervisor) so that its
    /// sessions and topics move to members that can write. A database that no member reaches makes none leave.
    /// 0: never leave for that.
    /// </summary>
    public int LeaveAfter { get; init; } = 5;
}

/// <summary>Akka.NET cluster membership of this node.</summary>
public sealed record ClusterOptions
{
    public string Hostname { get; init; } = "127.0.0.1";

    /// <summary>Akka remoting port; 0 picks a free one.</summary>
    public int Port { get; init; } = 4053;

    /// <summary>Seed nodes as akka.tcp://broker@host:port addresses; empty means the node joins itself.</summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];

    /// <summary>
    /// A new topic shard goes to the node that first addresses it (a subscriber's or publisher's node) unless that node
    /// holds more than its share (default); false: to the node with the fewest shards (README, "Topics near their
    /// users").
    /// </summary>
    public bool PlaceTopicsByFirstUse { get; init; } = true;

    /// <summary>
    /// With PostgreSQL storage: a member whose process has ended (its remoting port refuses connections and its
    /// database session is gone) is downed at once by the majority, without waiting for the failure detector and the
    /// split-brain resolver (README, "Failover"). False: every downing goes through the resolver.
    /// </summary>
    public bool DownEndedNodes { get; init; } = true;

    /// <summary>
    /// How the node finds its cluster: "seed" (default: <see cref="SeedNodes"/>) or "kubernetes" (Akka.Management
    /// cluster bootstrap with Akka.Discovery.KubernetesApi: pods found by label through the Kubernetes API).
    /// </summary>
    public string Discovery { get; init; } = "seed";

    /// <summary>Settings of <c>Discovery = kubernetes</c>; unused otherwise.</summary>
    public KubernetesDiscoveryOptions Kubernetes { get; init; } = new();
}

/// <summary>Cluster bootstrap through the Kubernetes API (Akka.Management + Akka.Discovery.KubernetesApi).</summary>
public sealed record KubernetesDiscoveryOptions
{
    /// <summary>The service name pods are looked up by; "{0}" in <see cref="PodLabelSelector"/> is replaced by it.</summary>
    public string ServiceName { get; init; } = "broker";

    /// <summary>Kubernetes label selector of the broker pods.</summary>
    public string PodLabelSelector { get; init; } = "app={0}";

    /// <summary>Namespace of the pods; empty means the pod's own (read from its service account).</summary>
    public string PodNamespace { get; init; } = "";

    /// <summary>Port of the Akka.Management HTTP endpoint that bootstrapping nodes probe on each other.</summary>
    public int ManagementPort { get; init; } = 8558;

    /// <summary>Pods that must be found before the first one forms a new cluster (the StatefulSet's replicas).</summary>
    public int RequiredContactPoints { get; init; } = 3;
}
