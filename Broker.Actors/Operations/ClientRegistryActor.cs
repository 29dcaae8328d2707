using Akka.Actor;

namespace Broker.Operations;

/// <summary>
/// One per node, named "client-registry": answers the management API about the clients connected to this node, from
/// the node's <see cref="ClientDirectory"/>. Other nodes reach it by actor selection at /user/client-registry. Not on
/// the message path, nor on the connect path.
/// </summary>
public sealed class ClientRegistryActor : ReceiveActor
{
    public const string Name = "client-registry";

    public ClientRegistryActor(ClientDirectory clients, Cluster.BrokerMetrics? metrics = null)
    {
        Receive<GetNodeStats>(_ => Sender.Tell(Stats(metrics ?? new Cluster.BrokerMetrics())));
        Receive<ListClients>(_ => Sender.Tell(new ClientList(clients.List())));
        Receive<KickClient>(k =>
        {
            var found = clients.TryGet(k.ClientId, out _, out var connection);
            if (found)
            {
                connection.Tell(AdministrativeDisconnect.Instance);
            }

            Sender.Tell(new KickResult(k.ClientId, found));
        });
    }

    public static Props Props(ClientDirectory clients, Cluster.BrokerMetrics? metrics = null) =>
        Akka.Actor.Props.Create(() => new ClientRegistryActor(clients, metrics));

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
