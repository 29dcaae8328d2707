using Akka.Actor;
using Broker.Cluster;

namespace Broker.Routing;

/// <summary>
/// Sends one publish to its chosen recipients. A session entity (no node) gets its own <see cref="Deliver"/> through
/// the session region. Live sessions beside their connections are grouped by node: each node's session host gets one
/// <see cref="NodeDeliver"/> listing them, so a publish crosses the network once per node that has recipients, with
/// its payload once. A recipient on a node that has left goes through the session region, whose entity confirms or
/// drops it (the live session ended with its node), and the node is noted in <see cref="LeftNodes"/> so that its
/// routes can be dropped. A node's route (a <see cref="SubscriberKey"/> with no client id) travels as a recipient with no client
/// id, which the node's session host expands to its local subscribers. One per topic entity; the lists are reused.
/// </summary>
public sealed class DeliveryDispatch
{
    private readonly BrokerContext _context;
    private readonly Dictionary<string, List<NodeRecipient>> _byNode = new(StringComparer.Ordinal);

    public DeliveryDispatch(BrokerContext context)
    {
        _context = context;
    }

    /// <summary>Nodes found to have left while sending (cleared by the caller once it dropped their routes).</summary>
    public HashSet<string> LeftNodes { get; } = new(StringComparer.Ordinal);

    public void Send(
        List<DeliveryTarget> targets,
        MqttApplicationMessage message,
        IActorRef? ackTo,
        long ackId,
        MessageOrigin? origin,
        long payloadId,
        string? retainedForFilter = null)
    {
        var nodes = _context.Nodes;
        foreach (var target in targets)
        {
            if (target.Node is { } node && !nodes.HasLeft(node))
            {
                if (!_byNode.TryGetValue(node, out var recipients))
                {
                    recipients = new List<NodeRecipient>();
                    _byNode[node] = recipients;
                }

                recipients.Add(new NodeRecipient(target.ClientId, target.Incarnation, target.SharedFilter));
                continue;
            }

            if (target.Node is not null)
            {
                LeftNodes.Add(target.Node);
                if (target.ClientId.Length == 0)
                {
                    // A departed node's route: its live sessions ended with it. Confirmed here, so no publisher waits.
                    if (ackTo is not null)
                    {
                        _context.Links.Tell(ackTo, new DeliveryStored(ackId));
                    }

                    continue;
                }
            }

            _context.SessionRegion.Tell(new Deliver(
                target.ClientId, message, target.SharedFilter, retainedForFilter, ackTo, ackId, origin, payloadId), ActorRefs.NoSender);
        }

        if (_byNode.Count == 0)
        {
            return;
        }

        foreach (var (node, recipients) in _byNode)
        {
            if (recipients.Count == 0)
            {
                continue;
            }

            _context.Links.Tell(nodes.HostOf(node), new NodeDeliver(message, recipients.ToArray(), ackTo, ackId, origin, payloadId, retainedForFilter));
            recipients.Clear();
        }

        if (_byNode.Count > 64)
        {
            _byNode.Clear(); // do not keep a list per node ever seen
        }
    }
}
