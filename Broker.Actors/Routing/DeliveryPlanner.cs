namespace Broker.Routing;

/// <summary>
/// One chosen recipient of a publish: a client (and, for a live session beside its connection, its node and
/// incarnation), and the full shared filter when chosen for a shared group.
/// </summary>
public readonly record struct DeliveryTarget(string ClientId, string? SharedFilter, string? Node = null, long Incarnation = 0)
{
    public DeliveryTarget(SubscriberKey key, string? sharedFilter)
        : this(key.ClientId, sharedFilter, key.Node, key.Incarnation)
    {
    }
}

/// <summary>
/// Decides who receives a publish on one topic: every client with a matching non-shared subscription once (however
/// many of its filters match: the session merges them, MQTT-v5.0 3.3.4), and for every shared subscription
/// "$share/group/filter" that matches, exactly one member of the group, chosen round-robin (MQTT-v5.0 4.8.2). A QoS 2
/// message with an origin picks its member from the origin instead (still round-robin over one publisher's messages),
/// so that the same message routed again (its publisher's session moved while routing it) meets the same member,
/// whose session recognises it, as long as the group did not change.
/// Pure: the topic entity owns one and feeds it the wildcard matches of this node's replica.
/// </summary>
public sealed class DeliveryPlanner
{
    private readonly HashSet<SubscriberKey> _seen = new();
    private readonly Dictionary<(string Group, string Filter), List<SubscriberKey>> _groups = new();
    private readonly Dictionary<(string Group, string Filter), int> _roundRobin = new();

    /// <summary>Fills <paramref name="targets"/> from exact subscribers of the topic and wildcard matches.</summary>
    public void Plan(
        string topic,
        HashSet<SubscriberKey> exact, // the set itself, not an interface: its enumerator stays a struct (every publish)
        List<(string Filter, SubscriberKey Key, byte Value)> wildcardMatches,
        List<DeliveryTarget> targets,
        MessageOrigin? origin = null)
    {
        _seen.Clear();
        foreach (var list in _groups.Values)
        {
            list.Clear();
        }

        foreach (var key in exact)
        {
            Add(topic, key, targets);
        }

        foreach (var (filter, key, _) in wildcardMatches)
        {
            Add(filter, key, targets);
        }

        foreach (var ((group, filter), members) in _groups)
        {
            if (members.Count == 0)
            {
                continue;
            }

            // Members arrive in hash order; sort so that round-robin walks a stable sequence.
            members.Sort(MemberOrder);
            SubscriberKey chosen;
            if (origin is not null)
            {
                chosen = members[(int)(unchecked((ulong)origin.Stream + (ulong)origin.Seq) % (ulong)members.Count)];
            }
            else
            {
                _roundRobin.TryGetValue((group, filter), out var next);
                chosen = members[next % members.Count];
                _roundRobin[(group, filter)] = (next + 1) % members.Count;
            }

            targets.Add(new DeliveryTarget(chosen, $"$share/{group}/{filter}"));
        }
    }

    /// <summary>
    /// Picks another member of one shared group for a message its previous member gave back; null when no other
    /// member is subscribed (the message is then dropped: the group is empty).
    /// </summary>
    public SubscriberKey? PickSharedMember(
        string topic,
        string group,
        string filter,
        IReadOnlyCollection<SubscriberKey> exact,
        List<(string Filter, SubscriberKey Key, byte Value)> wildcardMatches,
        string excludedClientId)
    {
        var members = new List<SubscriberKey>();
        if (filter == topic)
        {
            foreach (var key in exact)
            {
                if (key.ShareGroup == group && key.ClientId != excludedClientId)
                {
                    members.Add(key);
                }
            }
        }

        foreach (var (f, key, _) in wildcardMatches)
        {
            if (f == filter && key.ShareGroup == group && key.ClientId != excludedClientId)
            {
                members.Add(key);
            }
        }

        if (members.Count == 0)
        {
            return null;
        }

        members.Sort(MemberOrder);
        _roundRobin.TryGetValue((group, filter), out var next);
        _roundRobin[(group, filter)] = (next + 1) % members.Count;
        return members[next % members.Count];
    }

    private void Add(string filter, SubscriberKey key, List<DeliveryTarget> targets)
    {
        if (key.ShareGroup is null)
        {
            // A client gets a message once however many of its filters match (its session merges them); a client id
            // briefly held by two live sessions (one taking over from the other) reaches both.
            if (_seen.Add(key))
            {
                targets.Add(new DeliveryTarget(key, null));
            }

            return;
        }

        if (!_groups.TryGetValue((key.ShareGroup, filter), out var members))
        {
            members = [];
            _groups[(key.ShareGroup, filter)] = members;
        }

        members.Add(key);
    }

    private static int MemberOrder(SubscriberKey a, SubscriberKey b)
    {
        var byClient = string.CompareOrdinal(a.ClientId, b.ClientId);
        return byClient != 0 ? byClient : a.Incarnation.CompareTo(b.Incarnation);
    }
}
