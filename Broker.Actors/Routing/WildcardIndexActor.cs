using Akka.Actor;

namespace Broker.Routing;

/// <summary>Registers a wildcard subscription cluster-wide; answered with <see cref="WildcardRegistered"/>.</summary>
public sealed record RegisterWildcard(string Filter, SubscriberKey Key, long RequestId);

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
            var replyTo = Sender;
            Change(Encode(r.Filter, r.Key), add: true, () => replyTo.Tell(new WildcardRegistered(r.RequestId)));
        });
        Receive<UnregisterWildcard>(r => Change(Encode(r.Filter, r.Key), add: false, done: null));
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

    private static string Encode(string filter, SubscriberKey key) =>
        string.Concat(filter, Separator.ToString(), key.ClientId, Separator.ToString(), key.ShareGroup ?? "");

    private static (string Filter, SubscriberKey Key) Decode(string element)
    {
        var first = element.IndexOf(Separator);
        var second = element.IndexOf(Separator, first + 1);
        var group = element[(second + 1)..];
        return (element[..first], new SubscriberKey(element[(first + 1)..second], group.Length == 0 ? null : group));
    }
}
