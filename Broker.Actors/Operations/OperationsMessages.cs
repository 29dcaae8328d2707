using Akka.Actor;
using Broker.Cluster;

namespace Broker.Operations;

/// <summary>Marker of the management messages that may cross nodes; carried by <see cref="OperationsSerializer"/>.</summary>
public interface IOperationsMessage
{
}

/// <summary>One connected client as its node's <see cref="ClientDirectory"/> knows it.</summary>
public sealed record ClientInfo(
    string ClientId,
    string Node,
    string RemoteAddress,
    string ProtocolVersion,
    DateTimeOffset ConnectedAt,
    bool CleanStart,
    uint SessionExpiry,
    int KeepAlive);

/// <summary>Asks one node's registry for its connected clients; answered by <see cref="ClientList"/>.</summary>
public sealed record ListClients : IOperationsMessage
{
    public static readonly ListClients Instance = new();
}

public sealed record ClientList(IReadOnlyList<ClientInfo> Clients) : IOperationsMessage;

/// <summary>Asks one node's registry for the node's gauges and counters (for the dashboard); answered by <see cref="NodeStats"/>.</summary>
public sealed record GetNodeStats : IOperationsMessage
{
    public static readonly GetNodeStats Instance = new();
}

/// <summary>
/// One node's numbers: gauges now, counters since the node started (the dashboard turns counters into rates).
/// Drops are keyed by reason (queue_full, slow_consumer, expired).
/// </summary>
public sealed record NodeStats(
    string Address,
    long Connections,
    long SessionsOnline,
    long SessionsOffline,
    long Subscriptions,
    long Retained,
    long Queued,
    long Inflight,
    long MessagesIn,
    long MessagesOut,
    IReadOnlyDictionary<string, long> Drops,
    double UptimeSeconds) : IOperationsMessage;

/// <summary>Disconnects the client if it is connected to this node (v5 DISCONNECT 0x98); answered by <see cref="KickResult"/>.</summary>
public sealed record KickClient(string ClientId) : IOperationsMessage;

public sealed record KickResult(string ClientId, bool Found) : IOperationsMessage;

/// <summary>
/// Asks what a client's session holds, through the session shard region; answered by <see cref="SessionInfo"/>. It goes
/// to the client id's registry (<see cref="Sessions.ClientIdRegistry"/>), which asks the live session beside the
/// client's connection or, <see cref="AtEntity"/>, the client id's session entity.
/// </summary>
public sealed record GetSessionInfo(string ClientId, bool AtEntity = false) : IWithClientId, IOperationsMessage;

public sealed record SubscriptionInfo(string Filter, int QoS, bool NoLocal, bool RetainAsPublished, int RetainHandling, uint SubscriptionIdentifier);

/// <summary>
/// A session as it is now. <see cref="Exists"/> is false when no session is held for the client id; <see cref="Node"/>
/// is where the session runs: its entity's node, or, while it runs beside its client's connection, that node (with
/// the node's incarnation after a '#'). <see cref="Home"/> is where the client id's session entity lives, for a
/// persistent session (null for a clean session beside its connection, whose client id a registry entry holds).
/// </summary>
public sealed record SessionInfo(
    string ClientId,
    bool Exists,
    bool Connected,
    bool Persistent,
    uint SessionExpiry,
    IReadOnlyList<SubscriptionInfo> Subscriptions,
    int Queued,
    int Inflight,
    string Node,
    string? Home = null) : IOperationsMessage;

/// <summary>Registry to connection (local only): close with v5 reason 0x98 Administrative action.</summary>
public sealed record AdministrativeDisconnect
{
    public static readonly AdministrativeDisconnect Instance = new();
}
