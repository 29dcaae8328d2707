using System.Collections.Immutable;
using Broker.Cluster;
using Broker.Protocol;
using Broker.Security;

namespace Broker.Sessions;

/// <summary>
/// What a <see cref="ClientConnectionActor"/> needs only now and then: the HTTP service's authorization answers, the
/// publish rate limit, QoS 0 probes, topic aliases, merged SUBACKs, rerouting after a node
/// left, the refusal log's throttle and why the connection ended. An idle connected client uses none of it, so the
/// connection creates this with the first of them to change (docs/benchmarks.md, memory per idle connection). Plain
/// fields: the connection forwards to them.
/// </summary>
internal sealed class ConnectionOccasionalState
{
    // Authorization (ClientConnectionActor.Authorization.cs, .Security.cs).
    public HashSet<string>? HttpGrantedFilters; // the filters the HTTP service allowed, while subscribed
    public Dictionary<string, AclAnswer>? FreshAnswers;
    public object? AuthAwaitingWill;
    public int GrantsVersion;
    public Dictionary<string, bool>? ReadDecisions;
    public int ReadDecisionsVersion = -1;
    public Dictionary<ushort, ImmutableArray<MqttReasonCode?>>? SubAckMerges;
    public TokenBucket? PublishBucket;

    // Delivery and acknowledgements (.Backpressure.cs, .Publish.cs, .Acks.cs).
    public AckCollector<bool>? Qos0Probes;
    public LogThrottle RefusedLog;
    public TopicAliases? Aliases;
    public long ReroutedForLeftAtMs; // see RouteRetry

    // Why the connection ended (.Operations.cs).
    public DisconnectReason? EndReason;
}
