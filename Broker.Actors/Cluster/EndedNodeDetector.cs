using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Remote;

namespace Broker.Cluster;

/// <summary>
/// Downs a member whose process has ended (kill -9, a crash, an OOM kill) at once, instead of after the failure
/// detector (about 3 s) and the split-brain resolver's stable-after (3 s). A silent member (paused, partitioned by
/// dropped packets, its host gone) is not touched: it goes the failure detector's and the resolver's way as before.
/// <para>
/// Suspicion comes from remoting (the connection to a member was lost or could not be made) and from the failure
/// detector (a member marked unreachable). A suspect is downed by this node when all of these hold (<see cref="EndedNode"/>):
/// its remoting port refused <see cref="EndedNode.RefusalsNeeded"/> connections in a row (the kernel answers for a
/// port nobody listens on; a live node never closes its listener); its presence session in PostgreSQL is gone (see
/// <see cref="NodePresence"/>: a firewall that rejects connections between nodes can fake the refusals, not the end of
/// a live process's database session); and this node, with the members it still reaches, is a majority of the
/// cluster. Every survivor decides alone and downing is idempotent; the survivor also quarantines the ended
/// incarnation, which marks it terminated, so that the leader removes it at its next round. The shards and singletons of the downed member
/// then move after <c>down-removal-margin</c> as with any other downing.
/// </para>
/// One per node, at <c>/user/ended-node-detector</c>, on a cluster whose storage is PostgreSQL.
/// </summary>
public sealed class EndedNodeDetector : ReceiveActor, IWithTimers
{
    public const string Name = "ended-node-detector";
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Sweep = TimeSpan.FromMilliseconds(500);
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly string _storage;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, int> _refusals = new();       // suspects being probed: refusals so far
    private readonly Dictionary<Address, long> _presentUntil = new(); // refused but present: not probed again until then

    public EndedNodeDetector(string storageConnectionString)
    {
        _storage = storageConnectionString;
        Receive<DisassociatedEvent>(e => Suspect(e.RemoteAddress));
        Receive<AssociationErrorEvent>(e => Suspect(e.RemoteAddress));
        Receive<Tick>(_ =>
        {
            foreach (var member in _cluster.State.Unreachable)
            {
                Suspect(member.Address);
            }
        });
        Receive<ProbeAgain>(p => Probe(p.Node));
        Receive<Probed>(OnProbed);
        Receive<PresenceRead>(OnPresence);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string storageConnectionString) =>
        Akka.Actor.Props.Create(() => new EndedNodeDetector(storageConnectionString));

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
        Context.System.EventStream.Subscribe(Self, typeof(AssociationErrorEvent));
        Timers.StartPeriodicTimer("sweep", Tick.Instance, Sweep);
    }

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private Member? LiveMember(Address node) =>
        node.Equals(_cluster.SelfAddress) ? null
        : _cluster.State.Members.FirstOrDefault(m => m.Address.Equals(node) && EndedNode.Counts(m.Status));

    private void Suspect(Address node)
    {
        if (_refusals.ContainsKey(node) || LiveMember(node) is null || node.Host is null || node.Port is null ||
            (_presentUntil.TryGetValue(node, out var until) && Environment.TickCount64 < until))
        {
            return;
        }

        _refusals[node] = 0;
        Probe(node);
    }

    private void Probe(Address node) => ProbeAsync(node).PipeTo(Self);

    private static async Task<Probed> ProbeAsync(Address node)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(ProbeTimeout);
        try
        {
            await socket.ConnectAsync(node.Host!, node.Port!.Value, cts.Token).ConfigureAwait(false);
            return new Probed(node, false, "accepted"); // something listens: not ended
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return new Probed(node, true, "refused");
        }
        catch (SocketException e)
        {
            return new Probed(node, false, e.SocketErrorCode.ToString()); // unreachable: not a proof of anything
        }
        catch (OperationCanceledException)
        {
            return new Probed(node, false, "no answer"); // silent: not a proof of anything
        }
    }

    private void OnProbed(Probed probe)
    {
        if (!_refusals.TryGetValue(probe.Node, out var refusals))
        {
            return;
        }

        if (!probe.Refused || LiveMember(probe.Node) is null)
        {
            _refusals.Remove(probe.Node);
            if (!probe.Refused)
            {
                _log.Debug("Suspected node {0}: connection to its remoting port {1}", probe.Node, probe.Outcome);
            }

            return;
        }

        _refusals[probe.Node] = ++refusals;
        if (refusals < EndedNode.RefusalsNeeded)
        {
            Timers.StartSingleTimer(("probe", probe.Node), new ProbeAgain(probe.Node), EndedNode.ProbeInterval);
            return;
        }

        var node = probe.Node;
        NodePresence.IsPresentAsync(_storage, node, TimeSpan.FromSeconds(2))
            .ContinueWith(t => new PresenceRead(node, t.IsCompletedSuccessfully ? t.Result : null), TaskScheduler.Default)
            .PipeTo(Self);
    }

    private void OnPresence(PresenceRead read)
    {
        _refusals.Remove(read.Node);
        if (LiveMember(read.Node) is not { } member)
        {
            return;
        }

        if (read.Present != false)
        {
            _presentUntil[read.Node] = Environment.TickCount64 + 5_000;
            _log.Info("Node {0} refuses remoting connections but {1}: left to the failure detector and the split-brain resolver",
                read.Node, read.Present is null ? "the database could not be asked whether its process still runs" : "its database session is still open");
            return;
        }

        var counted = _cluster.State.Members.Where(m => EndedNode.Counts(m.Status)).Select(m => m.Address).ToList();
        var unreachable = _cluster.State.Unreachable.Select(m => m.Address).ToHashSet();
        var reachable = counted.Count(a => !a.Equals(read.Node) && !unreachable.Contains(a));
        if (!EndedNode.MayDown(counted.Count, reachable))
        {
            _log.Warning("Node {0} has ended, but this node reaches only {1} of {2} members: left to the split-brain resolver",
                read.Node, reachable, counted.Count);
            return;
        }

        _log.Warning("Node {0} has ended (its remoting port refused {1} connections in a row and its database session is gone): " +
            "downing it now", read.Node, EndedNode.RefusalsNeeded);
        _cluster.Down(member.Address);
        // The leader removes a downed member only once it is unreachable, which the failure detector would find seconds
        // later. Quarantining its incarnation marks it terminated at once (it is gone; no message of it may pass again).
        ((IRemoteActorRefProvider)((ExtendedActorSystem)Context.System).Provider).Quarantine(member.Address, member.UniqueAddress.Uid);
    }

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record ProbeAgain(Address Node);

    private sealed record Probed(Address Node, bool Refused, string Outcome);

    private sealed record PresenceRead(Address Node, bool? Present);
}

/// <summary>The rules of <see cref="EndedNodeDetector"/>, apart from the actor.</summary>
public static class EndedNode
{
    /// <summary>Refused connections in a row that count as "nothing listens on its remoting port".</summary>
    public const int RefusalsNeeded = 3;

    /// <summary>Pause between two probes of one suspect.</summary>
    public static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(150);

    /// <summary>Members that count towards the majority: every one not already on its way out.</summary>
    public static bool Counts(MemberStatus status) =>
        status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining or MemberStatus.Leaving;

    /// <summary>
    /// Whether a node that reaches <paramref name="reachable"/> members (itself included, the ended one not) of
    /// <paramref name="members"/> (the ended one included) may down the ended one: only as a strict majority, as the
    /// keep-majority resolver would decide; a minority leaves it to the resolver (which downs the minority itself).
    /// </summary>
    public static bool MayDown(int members, int reachable) => members > 0 && reachable * 2 > members;
}
