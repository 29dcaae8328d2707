using Akka.Actor;
using Akka.Event;

namespace Broker.Routing;

/// <summary>
/// Registers a wildcard subscription cluster-wide; answered with <see cref="WildcardRegistered"/>. <c>Renew</c>: a
/// woken session announces again a route it had; one this node's replica holds already is left as it is.
/// </summary>
public sealed record RegisterWildcard(string Filter, SubscriberKey Key, long RequestId, bool Renew = false);

public sealed record WildcardRegistered(long RequestId);

/// <summary>Removes a wildcard subscription cluster-wide; not answered.</summary>
public sealed record UnregisterWildcard(string Filter, SubscriberKey Key);

/// <summary>
/// One per node, named "wildcard-index". Knows every wildcard subscription of the cluster (a
/// <see cref="ReplicatedSetActor"/> set) and mirrors it into this node's <see cref="WildcardIndex"/>, which the topic
/// entities of this node match against. A registration is confirmed (so the SUBACK goes out) only when every node's
/// trie has it.
/// </summary>
public sealed class WildcardIndexActor : ReplicatedSetActor
{
    public const string Name = "wildcard-index";
    private const char Separator = '\u0000'; // cannot appear in MQTT strings [MQTT-1.5.4-2]
    private readonly WildcardIndex _index;

    public WildcardIndexActor(WildcardIndex index)
        : base("broker-wildcard-subscriptions")
    {
        _index = index;
        Receive<RegisterWildcard>(r =>
        {
            var element = Encode(r.Filter, r.Key);
            if (r.Renew && Contains(element))
            {
                // Every node holds it already: each read the stored routes when it started, and took every change
                // since (directly and by gossip). Changing it again would cost a DistributedData update (and the
                // digest of the whole set) and a confirmation from every node, for each session woken. (A node that
                // missed the direct change and whose origin node died before gossiping it lacks the route until it
                // restarts; announcing again on every wake covered that only from the next wake on.)
                Sender.Tell(new WildcardRegistered(r.RequestId));
                return;
            }

            var replyTo = Sender;
            Change(element, add: true, () => replyTo.Tell(new WildcardRegistered(r.RequestId)));
        });
        Receive<UnregisterWildcard>(r => Change(Encode(r.Filter, r.Key), add: false, done: null));
        Receive<Cluster.NodeLeft>(left => ForgetNode(left.Node));
    }

    protected override string PeerName => Name;

    public static Props Props(WildcardIndex index) => Akka.Actor.Props.Create(() => new WildcardIndexActor(index));

    protected override void OnAdded(string element)
    {
        var (filter, key) = Decode(element);
        _index.Add(filter, key);
    }

    protected override void OnRemoved(string element)
    {
        var (filter, key) = Decode(element);
        _index.Remove(filter, key);
    }

    /// <summary>
    /// "filter\0client\0group", and for a live session beside its connection "\0node\0incarnation" after it (the
    /// elements of earlier versions have three parts).
    /// </summary>
    internal static string Encode(string filter, SubscriberKey key) => key.Node is null
        ? string.Concat(filter, Separator.ToString(), key.ClientId, Separator.ToString(), key.ShareGroup ?? "")
        : string.Join(Separator, filter, key.ClientId, key.ShareGroup ?? "", key.Node,
            key.Incarnation.ToString(System.Globalization.CultureInfo.InvariantCulture));

    internal static (string Filter, SubscriberKey Key) Decode(string element)
    {
        var parts = element.Split(Separator);
        var group = parts[2].Length == 0 ? null : parts[2];
        return parts.Length >= 5
            ? (parts[0], new SubscriberKey(parts[1], group, parts[3], long.Parse(parts[4], System.Globalization.CultureInfo.InvariantCulture)))
            : (parts[0], new SubscriberKey(parts[1], group));
    }

    /// <summary>Removes every route of live sessions on a node that left the cluster (their sessions ended with it).</summary>
    private void ForgetNode(string node)
    {
        var gone = Elements.Where(e => Decode(e).Key.Node == node).ToList();
        foreach (var element in gone)
        {
            Change(element, add: false, done: null);
        }

        if (gone.Count > 0)
        {
            Log.Info("Removed {0} wildcard routes of live sessions on {1}, which left the cluster", gone.Count, node);
        }
    }
}
