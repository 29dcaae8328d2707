using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;
using Akka.Event;
using Broker.Persistence.Serialization;

namespace Broker.Routing;

/// <summary>Node to node: apply this change to your replica now (answered with <see cref="ReplicaChangeApplied"/>).</summary>
public sealed record ReplicaChange(string Element, bool Add, long CorrelationId) : IBrokerSerializable;

public sealed record ReplicaChangeApplied(long CorrelationId) : IBrokerSerializable;

/// <summary>
/// Merge every Up node's copy of the set into this replica (a DistributedData read from all), then answer
/// <see cref="ReplicaSynced"/>. A node asks this before it opens its listener: changes made while it was not yet a
/// member reached it only by gossip, and a publish it accepts must not miss a route.
/// </summary>
public sealed record SyncReplica(TimeSpan Timeout) : INoSerializationVerificationNeeded;

/// <summary>
/// Add these elements, read from storage at start-up, to this node's replica only (not to DistributedData); answered
/// with <see cref="ReplicaSynced"/>. Gossip does not remove them (after a whole-cluster restart it knows none of them);
/// a direct removal does, and so does gossip once it has known them.
/// </summary>
public sealed record SeedReplica(IReadOnlyCollection<string> Elements) : INoSerializationVerificationNeeded;

public sealed class ReplicaSynced : INoSerializationVerificationNeeded
{
    public static readonly ReplicaSynced Instance = new();
}

/// <summary>
/// One per node and per replicated set (wildcard subscriptions, retained topics): a set of strings known on every
/// node, mirrored into a local structure by <see cref="OnAdded"/> / <see cref="OnRemoved"/>.
/// <para>
/// Two channels keep the replicas equal. A change is applied here, written to an Akka.DistributedData ORSet (gossip:
/// nodes that join later, or missed a message, converge), and sent directly to the same actor on every other Up node,
/// which applies it at once and answers. The change is confirmed to its requester only when every node answered
/// (or after a timeout): so after a SUBACK, a publish on any node routes to the new subscription; DistributedData's
/// Changed notifications alone arrive up to a gossip interval later.
/// </para>
/// <para>
/// A Changed notification can be older than a direct change (gossip lags): an element added directly is not removed
/// by a Changed that does not know it yet, and one removed directly is not added back, until a Changed confirms.
/// </para>
/// </summary>
public abstract class ReplicatedSetActor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(3);
    private readonly ORSetKey<string> _key;
    private readonly IActorRef _replicator;
    private readonly Akka.Cluster.Cluster _cluster;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly HashSet<string> _pendingAdds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _pendingRemoves = new(StringComparer.Ordinal);
    private readonly HashSet<string> _seeded = new(StringComparer.Ordinal);
    private readonly Dictionary<long, PendingConfirm> _confirms = new();
    private long _nextCorrelation;

    protected ReplicatedSetActor(string key)
    {
        _key = new ORSetKey<string>(key);
        _replicator = DistributedData.Get(Context.System).Replicator;
        _cluster = Akka.Cluster.Cluster.Get(Context.System);

        Receive<ReplicaChange>(c =>
        {
            ApplyDirect(c.Element, c.Add);
            Sender.Tell(new ReplicaChangeApplied(c.CorrelationId));
        });
        Receive<ReplicaChangeApplied>(a => Confirmed(a.CorrelationId, Sender.Path.Address));
        Receive<ConfirmTimedOut>(t =>
        {
            if (_confirms.Remove(t.CorrelationId, out var pending))
            {
                Log.Warning("{0}: {1} node(s) did not confirm a change in time; gossip will complete it", _key.Id, pending.Waiting.Count);
                pending.Done();
            }
        });
        Receive<Changed>(c =>
        {
            if (c.Key.Equals(_key))
            {
                Reconcile(c.Get(_key).Elements);
            }
        });
        Receive<SeedReplica>(s =>
        {
            foreach (var element in s.Elements)
            {
                if (!_pendingRemoves.Contains(element) && _known.Add(element))
                {
                    _seeded.Add(element);
                    OnAdded(element);
                }
            }

            Sender.Tell(ReplicaSynced.Instance);
        });
        Receive<SyncReplica>(s => _replicator.Tell(Dsl.Get(_key, new ReadAll(s.Timeout), Sender)));
        Receive<GetSuccess>(g =>
        {
            if (g.Key.Equals(_key))
            {
                Reconcile(g.Get(_key).Elements);
            }

            (g.Request as IActorRef)?.Tell(ReplicaSynced.Instance);
        });
        Receive<NotFound>(n => (n.Request as IActorRef)?.Tell(ReplicaSynced.Instance));
        Receive<GetFailure>(f =>
        {
            Log.Warning("{0}: not every node answered the start-up read in time; gossip will complete the replica", _key.Id);
            (f.Request as IActorRef)?.Tell(ReplicaSynced.Instance);
        });
        Receive<UpdateSuccess>(_ => { });
        Receive<UpdateTimeout>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected ILoggingAdapter Log { get; } = Context.GetLogger();

    /// <summary>The actor's name under /user on every node (the same on all of them).</summary>
    protected abstract string PeerName { get; }

    protected abstract void OnAdded(string element);

    protected abstract void OnRemoved(string element);

    protected override void PreStart() => _replicator.Tell(Dsl.Subscribe(_key, Self));

    /// <summary>Applies a change cluster-wide; <paramref name="done"/> runs once every node has it (or after a timeout).</summary>
    protected void Change(string element, bool add, Action? done)
    {
        ApplyDirect(element, add);
        var self = _cluster.SelfUniqueAddress;
        _replicator.Tell(Dsl.Update(_key, ORSet<string>.Empty, WriteLocal.Instance,
            s => add ? s.Add(self, element) : s.Remove(self, element)));

        var peers = new HashSet<Address>();
        foreach (var member in _cluster.State.Members)
        {
            if (member.Address.Equals(_cluster.SelfAddress))
            {
                continue;
            }

            if (member.Status == MemberStatus.Up)
            {
                peers.Add(member.Address);
            }
            else if (member.Status is MemberStatus.Joining or MemberStatus.WeaklyUp)
            {
                // A joining node reads every replica once it sees itself Up, which can be before this node sees it
                // Up: a change made in between would reach it only by gossip. Tell it too (not awaited: its actor
                // may not be running yet).
                Peer(member.Address).Tell(new ReplicaChange(element, add, 0));
            }
        }

        if (peers.Count == 0 || done is null)
        {
            foreach (var peer in peers)
            {
                Peer(peer).Tell(new ReplicaChange(element, add, 0));
            }

            done?.Invoke();
            return;
        }

        var correlation = ++_nextCorrelation;
        _confirms[correlation] = new PendingConfirm(peers, done);
        foreach (var peer in peers)
        {
            Peer(peer).Tell(new ReplicaChange(element, add, correlation));
        }

        Timers.StartSingleTimer(correlation, new ConfirmTimedOut(correlation), ConfirmTimeout);
    }

    protected bool Contains(string element) => _known.Contains(element);

    /// <summary>The elements this replica knows.</summary>
    protected IReadOnlyCollection<string> Elements => _known;

    private ActorSelection Peer(Address address) => Context.ActorSelection(new RootActorPath(address) / "user" / PeerName);

    private void Confirmed(long correlation, Address from)
    {
        if (!_confirms.TryGetValue(correlation, out var pending))
        {
            return;
        }

        pending.Waiting.Remove(from);
        if (pending.Waiting.Count == 0)
        {
            _confirms.Remove(correlation);
            Timers.Cancel(correlation);
            pending.Done();
        }
    }

    private void ApplyDirect(string element, bool add)
    {
        if (add)
        {
            _pendingRemoves.Remove(element);
            _pendingAdds.Add(element);
            if (_known.Add(element))
            {
                OnAdded(element);
            }
        }
        else
        {
            _pendingAdds.Remove(element);
            _seeded.Remove(element);
            _pendingRemoves.Add(element);
            if (_known.Remove(element))
            {
                OnRemoved(element);
            }
        }
    }

    private void Reconcile(IImmutableSet<string> current)
    {
        foreach (var element in current)
        {
            _pendingAdds.Remove(element); // gossip has caught up with the direct add
            _seeded.Remove(element); // and gossip owns a seeded element once it knows it
            if (!_pendingRemoves.Contains(element) && _known.Add(element))
            {
                OnAdded(element);
            }
        }

        _pendingRemoves.RemoveWhere(e => !current.Contains(e)); // gossip has caught up with the direct removal
        if (_known.Count == current.Count && _pendingAdds.Count == 0)
        {
            return;
        }

        foreach (var element in _known.Where(e => !current.Contains(e) && !_pendingAdds.Contains(e) && !_seeded.Contains(e)).ToList())
        {
            _known.Remove(element);
            OnRemoved(element);
        }
    }

    private sealed record ConfirmTimedOut(long CorrelationId);

    private sealed class PendingConfirm(HashSet<Address> waiting, Action done)
    {
        public HashSet<Address> Waiting { get; } = waiting;

        public Action Done { get; } = done;
    }
}
