using Akka.Actor;
using Akka.DistributedData;
using System.Collections.Immutable;
using Akka.Event;

namespace Broker.Routing;

/// <summary>Registers a wildcard subscription cluster-wide; answered with <see cref="WildcardRegistered"/>.</summary>
public sealed record RegisterWildcard(string Filter, SubscriberKey Key, long RequestId);

public sealed record WildcardRegistered(long RequestId);

/// <summary>Removes a wildcard subscription cluster-wide; not answered.</summary>
public sealed record UnregisterWildcard(string Filter, SubscriberKey Key);

/// <summary>
/// One per node. Keeps the cluster's wildcard subscriptions in an Akka.DistributedData ORSet (so every node knows every
/// wildcard filter, and a node that joins later learns them by gossip) and mirrors that set into this node's
/// <see cref="WildcardIndex"/>, which the topic entities of this node match against.
/// <para>
/// Consistency: a registration is written to all reachable nodes (WriteAll) before it is confirmed, so a SUBACK means
/// every node's topic entities will route to the new subscription. The local trie is updated when the replicator
/// confirms the update; Changed notifications (which always reflect the latest local replica) reconcile the rest.
/// </para>
/// </summary>
public sealed class WildcardIndexActor : ReceiveActor
{
    private static readonly ORSetKey<string> Key = new("broker-wildcard-subscriptions");
    private const char Separator = '\u0000'; // cannot appear in MQTT strings [MQTT-1.5.4-2]

    private readonly WildcardIndex _index;
    private readonly IActorRef _replicator;
    private readonly Akka.Cluster.UniqueAddress _self;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public WildcardIndexActor(WildcardIndex index)
    {
        _index = index;
        var ddata = DistributedData.Get(Context.System);
        _replicator = ddata.Replicator;
        _self = Akka.Cluster.Cluster.Get(Context.System).SelfUniqueAddress;

        Receive<RegisterWildcard>(r =>
        {
            var element = Encode(r.Filter, r.Key);
            var request = new PendingChange(element, true, Sender, r.RequestId);
            _replicator.Tell(Dsl.Update(Key, ORSet<string>.Empty, WriteConsistency, request, s => s.Add(_self, element)));
        });
        Receive<UnregisterWildcard>(r =>
        {
            var element = Encode(r.Filter, r.Key);
            var request = new PendingChange(element, false, ActorRefs.Nobody, 0);
            _replicator.Tell(Dsl.Update(Key, ORSet<string>.Empty, WriteConsistency, request, s => s.Remove(_self, element)));
        });
        Receive<UpdateSuccess>(u => Complete(u.Request));
        Receive<UpdateTimeout>(u =>
        {
            // Written locally; gossip spreads it to the nodes that did not answer in time.
            _log.Warning("Wildcard subscription update reached only some nodes in time; gossip will complete it");
            Complete(u.Request);
        });
        Receive<Changed>(c =>
        {
            if (c.Key.Equals(Key))
            {
                Reconcile(c.Get(Key).Elements);
            }
        });
    }

    private static IWriteConsistency WriteConsistency { get; } = new WriteAll(TimeSpan.FromSeconds(3));

    protected override void PreStart() => _replicator.Tell(Dsl.Subscribe(Key, Self));

    public static Props Props(WildcardIndex index) => Akka.Actor.Props.Create(() => new WildcardIndexActor(index));

    private void Complete(object? request)
    {
        if (request is not PendingChange change)
        {
            return;
        }

        if (change.Add ? _known.Add(change.Element) : _known.Remove(change.Element))
        {
            Apply(change.Element, change.Add);
        }

        if (change.Add)
        {
            change.ReplyTo.Tell(new WildcardRegistered(change.RequestId));
        }
    }

    private void Reconcile(IImmutableSet<string> current)
    {
        foreach (var element in current)
        {
            if (_known.Add(element))
            {
                Apply(element, true);
            }
        }

        if (_known.Count == current.Count)
        {
            return;
        }

        List<string>? removed = null;
        foreach (var element in _known)
        {
            if (!current.Contains(element))
            {
                (removed ??= []).Add(element);
            }
        }

        foreach (var element in removed ?? [])
        {
            _known.Remove(element);
            Apply(element, false);
        }
    }

    private void Apply(string element, bool add)
    {
        var (filter, key) = Decode(element);
        if (add)
        {
            _index.Add(filter, key);
        }
        else
        {
            _index.Remove(filter, key);
        }
    }

    private static string Encode(string filter, SubscriberKey key) =>
        string.Concat(filter, Separator.ToString(), key.ClientId, Separator.ToString(), key.ShareGroup ?? "");

    private static (string Filter, SubscriberKey Key) Decode(string element)
    {
        var first = element.IndexOf(Separator);
        var second = element.IndexOf(Separator, first + 1);
        var group = element[(second + 1)..];
        return (element[..first], new SubscriberKey(element[(first + 1)..second], group.Length == 0 ? null : group));
    }

    private sealed record PendingChange(string Element, bool Add, IActorRef ReplyTo, long RequestId);
}
