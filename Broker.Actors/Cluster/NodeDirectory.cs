using System.Collections.Concurrent;
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;

namespace Broker.Cluster;

/// <summary>
/// Names the nodes that live sessions run on, for routes to them (see <see cref="Routing.SubscriberKey"/>): a node is
/// "address#uid", so a node restarted on the same address is another node. Knows which nodes left the cluster (their
/// live sessions ended with them) and resolves each node's session host once. Read by topic entities on any thread;
/// written by <see cref="NodeDirectoryActor"/>.
/// </summary>
public sealed class NodeDirectory
{
    private readonly ConcurrentDictionary<string, IActorRef> _hosts = new(StringComparer.Ordinal);
    private ImmutableHashSet<string> _left = ImmutableHashSet<string>.Empty;
    private readonly ConcurrentDictionary<string, string> _upByAddress = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _verdicts = new(StringComparer.Ordinal);
    private readonly object _membershipLock = new();
    private ExtendedActorSystem? _system;
    private Address? _selfAddress;

    /// <summary>This node's name.</summary>
    public string Self { get; private set; } = "";

    /// <summary>This node's session host.</summary>
    public IActorRef SelfHost { get; private set; } = ActorRefs.Nobody;

    public static string NameOf(UniqueAddress node) => string.Concat(node.Address.ToString(), "#", node.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture));

    internal void Start(ActorSystem system, IActorRef selfHost)
    {
        _system = (ExtendedActorSystem)system;
        Self = NameOf(Akka.Cluster.Cluster.Get(system).SelfUniqueAddress);
        _selfAddress = Akka.Cluster.Cluster.Get(system).SelfAddress;
        SelfHost = selfHost;
        _hosts[Self] = selfHost;
        var margin = system.Settings.Config.GetString("akka.cluster.down-removal-margin", "off");
        ShardsMovedAfter = (margin == "off" ? TimeSpan.Zero : system.Settings.Config.GetTimeSpan("akka.cluster.down-removal-margin"))
            + TimeSpan.FromSeconds(1);
    }

    /// <summary>
    /// True once the node was removed from (or downed by) the cluster, or another node is up on its address (it was
    /// restarted): nothing of it runs any more. Routes recovered from the journal after a restart of the whole
    /// cluster name nodes of the last run, which are found gone this way.
    /// </summary>
    public bool HasLeft(string node)
    {
        // Asked for every recipient of every publish: answered from a cache that membership changes clear.
        if (_verdicts.TryGetValue(node, out var left))
        {
            return left;
        }

        lock (_membershipLock)
        {
            var separator = node.LastIndexOf('#');
            left = _left.Contains(node)
                || (separator > 0 && _upByAddress.TryGetValue(node[..separator], out var current) && current != node);
            _verdicts[node] = left;
            return left;
        }
    }

    internal void Left(string node)
    {
        lock (_membershipLock)
        {
            _left = _left.Add(node);
            _verdicts.Clear();
            Volatile.Write(ref _lastLeftAtMs, Environment.TickCount64);
        }
    }

    private long _lastLeftAtMs;

    /// <summary>When (Environment.TickCount64) the last node was downed or removed; 0 while none was.</summary>
    public long LastLeftAtMs => Volatile.Read(ref _lastLeftAtMs);

    private int _unreachable;

    /// <summary>
    /// True while this node's failure detector finds another member unreachable: kept from cluster events by
    /// <see cref="NodeDirectoryActor"/>, so that a publish asks it for the price of a field read.
    /// </summary>
    public bool AnyUnreachable => Volatile.Read(ref _unreachable) > 0;

    internal void Unreachable(int count) => Volatile.Write(ref _unreachable, count);

    /// <summary>
    /// How long after a node was downed the shards it hosted can be reached again (down-removal-margin plus a second
    /// for removal and the regions' hand-over); see <see cref="Sessions.RouteRetry"/>.
    /// </summary>
    public TimeSpan ShardsMovedAfter { get; private set; } = TimeSpan.FromSeconds(3);

    internal void Up(UniqueAddress member)
    {
        lock (_membershipLock)
        {
            _upByAddress[member.Address.ToString()] = NameOf(member);
            _verdicts.Clear();
        }
    }

    /// <summary>The session host of a node (resolved once; a remote reference needs no round trip).</summary>
    public IActorRef HostOf(string node) => _hosts.GetOrAdd(node, static (n, directory) =>
        directory.HostAt(Address.Parse(n[..n.LastIndexOf('#')])), this);

    /// <summary>The session host at an actor's address (a local actor's address has no host: this node).</summary>
    public IActorRef HostAt(Address address)
    {
        if (address.HasLocalScope || address.Equals(_selfAddress))
        {
            return SelfHost;
        }

        return _hosts.GetOrAdd(address.ToString(), static (_, state) =>
            state.System!.Provider.ResolveActorRef(new RootActorPath(state.Address) / "user" / Sessions.SessionHost.Name), (System: _system, Address: address));
    }
}

/// <summary>A node left the cluster (sent to this node's wildcard index by the node that cleans up after it).</summary>
public sealed record NodeLeft(string Node);

/// <summary>
/// Follows cluster membership for the <see cref="NodeDirectory"/>. When a node is removed or downed, the surviving
/// member with the lowest address tells its wildcard index to forget the live sessions' routes of that node (one
/// node does it; the index replicates the removal).
/// </summary>
public sealed class NodeDirectoryActor : UntypedActor
{
    public const string Name = "node-directory";
    private readonly NodeDirectory _directory;
    private readonly IActorRef _wildcardIndex;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly HashSet<UniqueAddress> _unreachable = new();

    public NodeDirectoryActor(NodeDirectory directory, IActorRef wildcardIndex)
    {
        _directory = directory;
        _wildcardIndex = wildcardIndex;
    }

    public static Props Props(NodeDirectory directory, IActorRef wildcardIndex) =>
        Akka.Actor.Props.Create(() => new NodeDirectoryActor(directory, wildcardIndex));

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp),
            typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.MemberDowned), typeof(ClusterEvent.UnreachableMember),
            typeof(ClusterEvent.ReachableMember));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case ClusterEvent.MemberUp up:
                _directory.Up(up.Member.UniqueAddress);
                break;
            case ClusterEvent.MemberRemoved removed:
                Reachability(removed.Member, unreachable: false);
                Gone(removed.Member);
                break;
            case ClusterEvent.UnreachableMember unreachable:
                Reachability(unreachable.Member, unreachable: true);
                break;
            case ClusterEvent.ReachableMember reachable:
                Reachability(reachable.Member, unreachable: false);
                break;
            case ClusterEvent.MemberDowned downed:
                Gone(downed.Member);
                break;
        }
    }

    /// <summary>The members this node finds unreachable, as the cluster's own view counts them (until reachable or removed).</summary>
    private void Reachability(Member member, bool unreachable)
    {
        if (unreachable ? _unreachable.Add(member.UniqueAddress) : _unreachable.Remove(member.UniqueAddress))
        {
            _directory.Unreachable(_unreachable.Count);
        }
    }

    private void Gone(Member member)
    {
        var node = NodeDirectory.NameOf(member.UniqueAddress);
        if (node == _directory.Self || _directory.HasLeft(node))
        {
            return;
        }

        _directory.Left(node);
        var cleaner = _cluster.State.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp && !m.UniqueAddress.Equals(member.UniqueAddress))
            .Select(m => m.Address)
            .OrderBy(a => a, Address.Comparer)
            .FirstOrDefault();
        if (cleaner is not null && cleaner.Equals(_cluster.SelfAddress))
        {
            _wildcardIndex.Tell(new NodeLeft(node));
        }
    }
}
