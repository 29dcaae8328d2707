using Akka.Actor;

namespace Broker.Operations;

/// <summary>
/// One per node, named "client-registry": the clients connected to this node, for the management API. Connections
/// announce themselves once attached (<see cref="ClientOnline"/>) and are watched, so an entry leaves with its actor.
/// Other nodes reach it by actor selection at /user/client-registry. Not on the message path.
/// </summary>
public sealed class ClientRegistryActor : ReceiveActor
{
    public const string Name = "client-registry";
    private readonly Dictionary<string, (ClientInfo Info, IActorRef Connection)> _byClientId = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _byConnection = new();

    public ClientRegistryActor(Cluster.BrokerMetrics? metrics = null)
    {
        Receive<ClientOnline>(o =>
        {
            if (_byClientId.TryGetValue(o.Info.ClientId, out var previous))
            {
                _byConnection.Remove(previous.Connection); // taken over on this node; the old one is closing
            }

            _byClientId[o.Info.ClientId] = (o.Info, o.Connection);
            _byConnection[o.Connection] = o.Info.ClientId;
            Context.Watch(o.Connection);
        });
        Receive<Terminated>(t =>
        {
            if (_byConnection.Remove(t.ActorRef, out var clientId) &&
                _byClientId.TryGetValue(clientId, out var entry) && entry.Connection.Equals(t.ActorRef))
            {
                _byClientId.Remove(clientId);
            }
        });
        Receive<GetNodeStats>(_ => Sender.Tell(Stats(metrics ?? new Cluster.BrokerMetrics())));
        Receive<ListClients>(_ => Sender.Tell(new ClientList(_byClientId.Values.Select(e => e.Info).ToList())));
        Receive<KickClient>(k =>
        {
            var found = _byClientId.TryGetValue(k.ClientId, out var entry);
            if (found)
            {
                entry.Connection.Tell(AdministrativeDisconnect.Instance);
            }

            Sender.Tell(new KickResult(k.ClientId, found));
        });
    }

    public static Props Props(Cluster.BrokerMetrics? metrics = null) => Akka.Actor.Props.Create(() => new ClientRegistryActor(metrics));

    private static NodeStats Stats(Cluster.BrokerMetrics m)
    {
        var online = m.SessionsOnline;
        return new NodeStats(
            Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString(),
            m.Connections, online, Math.Max(0, m.Sessions - online), m.Subscriptions, m.RetainedMessages, m.Queued,
            m.Inflight, m.MessagesIn, m.MessagesOut,
            new Dictionary<string, long>
            {
                ["queue_full"] = m.DroppedQueueFull,
                ["queue_full_oldest"] = m.DroppedOldest,
                ["queue_full_newest"] = m.DroppedNewest,
                ["queue_overflow"] = m.DroppedOverflow,
                ["refused_queue_full"] = m.RefusedQueueFull,
                ["slow_consumer"] = m.DroppedSlowConsumer,
                ["expired"] = m.Expired,
            },
            (DateTimeOffset.UtcNow - m.StartedAt).TotalSeconds);
    }
}
