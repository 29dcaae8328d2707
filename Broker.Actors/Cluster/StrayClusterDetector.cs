using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Broker.Operations;

namespace Broker.Cluster;

/// <summary>
/// Ends a cluster that formed beside the real one. The first seed node joins itself when it starts and reaches no
/// other seed within seed-node-timeout: right on the first start of a cluster, wrong when it is restarted (after the
/// split-brain resolver downed it) while still cut off from the others. It then serves as a cluster of its own, and
/// Akka clusters never merge, so the split outlives the partition. Every few seconds this actor asks each configured
/// seed that is not a member of its own cluster how many Up members its cluster has; when this node is Up and the
/// other cluster is larger, this node leaves by coordinated shutdown (the host exits with code 3 and its supervisor
/// starts a new process, which finds the other seeds and joins them). One per node, at <c>/user/cluster-probe</c>,
/// which also answers the other nodes' probes.
/// </summary>
public sealed class StrayClusterDetector : ReceiveActor, IWithTimers
{
    public const string Name = "cluster-probe";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(3);
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly IReadOnlyList<Address> _seeds;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private bool _leaving;

    public StrayClusterDetector(IReadOnlyList<Address> seeds)
    {
        _seeds = seeds;
        Receive<ProbeCluster>(_ => Sender.Tell(new ClusterProbed(UpMembers(), _cluster.SelfAddress.ToString(),
            _cluster.State.Members.Select(m => m.Address.ToString()).ToList())));
        Receive<Tick>(_ => Probe());
        Receive<ClusterProbed>(OnProbed);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IReadOnlyList<string> seeds) =>
        Akka.Actor.Props.Create(() => new StrayClusterDetector(seeds.Select(Address.Parse).ToList()));

    protected override void PreStart()
    {
        if (_seeds.Count > 1)
        {
            Timers.StartPeriodicTimer("probe", Tick.Instance, Interval);
        }
    }

    private int UpMembers() => _cluster.State.Members.Count(m => m.Status == MemberStatus.Up);

    private void Probe()
    {
        if (_cluster.SelfMember.Status != MemberStatus.Up || UpMembers() >= _seeds.Count)
        {
            return;
        }

        var members = _cluster.State.Members.Select(m => m.Address).ToHashSet();
        foreach (var seed in _seeds.Where(s => !members.Contains(s)))
        {
            Context.ActorSelection(new RootActorPath(seed) / "user" / Name).Tell(ProbeCluster.Instance);
        }
    }

    private void OnProbed(ClusterProbed answer)
    {
        var ours = UpMembers();
        var from = Address.Parse(answer.Node);
        // Not a cluster beside ours when the answering node is one of our members or knows this node as one of its own
        // (a node that is still joining this cluster).
        if (_leaving || _cluster.SelfMember.Status != MemberStatus.Up || _cluster.State.Members.Any(m => m.Address == from) ||
            answer.Members.Contains(_cluster.SelfAddress.ToString()) || answer.UpMembers <= ours)
        {
            return;
        }

        _leaving = true;
        _log.Error("This node's cluster ({0} Up members) runs beside the cluster of seed {1} ({2} Up members): leaving it, " +
            "so that a restarted node joins the larger cluster", ours, answer.Node, answer.UpMembers);
        CoordinatedShutdown.Get(Context.System).Run(StrayClusterReason.Instance);
    }

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}

/// <summary>Why a node's coordinated shutdown ran: its cluster was found beside a larger one.</summary>
public sealed class StrayClusterReason : CoordinatedShutdown.Reason
{
    public static readonly StrayClusterReason Instance = new();

    public override int ExitCode => 3; // as a node downed by the split-brain resolver
}

/// <summary>Asks a node's <see cref="StrayClusterDetector"/> how many Up members its cluster has.</summary>
public sealed record ProbeCluster : IOperationsMessage
{
    public static readonly ProbeCluster Instance = new();
}

/// <summary>The answer: Up members of the answering node's cluster, the node's address, the addresses of all its members.</summary>
public sealed record ClusterProbed(int UpMembers, string Node, IReadOnlyList<string> Members) : IOperationsMessage;
