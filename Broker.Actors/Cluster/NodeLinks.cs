using Akka.Actor;
using Broker.Persistence.Serialization;

namespace Broker.Cluster;

/// <summary>
/// Batches the frequent small messages that one node sends to actors on another: deliveries to a node's session host
/// (<see cref="Routing.NodeDeliver"/>) and the confirmations that flow back to publishers
/// (<see cref="Routing.PublishRouted"/>, <see cref="Routing.DeliveryStored"/>). Each remote message costs an envelope
/// with the recipient's and sender's paths, a serialization and a frame of its own; a batch pays that once for every
/// message the sender queued in the meantime.
/// <code>
///   actor ─Tell(target, m)─► node link ──(items queued while it ran)──► one LinkBatch ──► node link ─► target.Tell(m)
///   (node A)                 (node A)                                                      (node B)
/// </code>
/// A local target gets its message directly. Order is kept for each sender and target: a sender's messages of these
/// kinds to a remote target always take the link (one actor per node, one association per pair of nodes), never the
/// direct way. A batch is sent once the link has handled every message that was queued before its first item (it
/// tells itself to flush), so a message waits at most one turn of the link's mailbox; under load batches grow by
/// themselves. The sender travels as no one: these messages carry their reply address in their fields.
/// <para>
/// Rolling upgrades: a node of a version without links cannot read batches. Each node asks every member for its link
/// (Akka's Identify) and batches only to nodes that answered with one; it sends directly until then (a switch from
/// direct to batched keeps order: the batch is sent after the direct messages, and handed on after them). Batches of
/// publishes (<see cref="Routing.RoutePublishes"/>) go through the topic region to whichever node hosts the topic, so
/// connections gather them only while <see cref="EveryMemberReadsBatches"/>.
/// </para>
/// </summary>
public sealed class NodeLinks
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Address, bool> _linked = new();
    private IActorRef _link = ActorRefs.Nobody;
    private volatile bool _everyMemberReadsBatches = true;

    /// <summary>True while every other member of the cluster was found to have a link (so reads every batch).</summary>
    public bool EveryMemberReadsBatches => _everyMemberReadsBatches;

    internal void Start(IActorRef link) => _link = link;

    internal void Linked(Address node, bool linked) => _linked[node] = linked;

    internal void Forget(Address node) => _linked.TryRemove(node, out _);

    internal bool IsLinked(Address node) => _linked.TryGetValue(node, out var linked) && linked;

    internal void MembersChanged(IEnumerable<Address> others) => _everyMemberReadsBatches = others.All(IsLinked);

    /// <summary>Sends <paramref name="message"/> (an <see cref="IBrokerSerializable"/>) to <paramref name="target"/>.</summary>
    public void Tell(IActorRef target, object message)
    {
        if (target is IInternalActorRef { IsLocal: true } || !IsLinked(target.Path.Address))
        {
            target.Tell(message, ActorRefs.NoSender);
            return;
        }

        _link.Tell(new LinkSend(target, message), ActorRefs.NoSender);
    }
}

/// <summary>One message for a remote actor, handed to this node's link.</summary>
internal sealed record LinkSend(IActorRef Target, object Message);

/// <summary>What one node's link sends another's: messages in the order they were handed to it.</summary>
public sealed record LinkBatch(IReadOnlyList<LinkItem> Items) : IBrokerSerializable;

/// <summary>One message of a <see cref="LinkBatch"/> and the actor it is for (on the receiving node).</summary>
public readonly record struct LinkItem(IActorRef Target, object Message);

/// <summary>
/// The link of one node, named "node-link": it collects what actors of this node send to each other node and sends
/// it as batches, and hands the items of batches from other nodes to their targets.
/// </summary>
public sealed class NodeLinkActor : UntypedActor, IWithTimers
{
    public const string Name = "node-link";

    /// <summary>A batch is sent when it holds this many items even if more are queued.</summary>
    internal const int MaxItems = 512;

    /// <summary>A batch is sent when its payloads reach this many bytes (a large payload travels in a batch of its own).</summary>
    internal const int MaxBytes = 256 * 1024;

    private static readonly TimeSpan AskAgainAfter = TimeSpan.FromSeconds(2);
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly NodeLinks _links;
    private readonly Dictionary<Address, Outbound> _outbound = new();
    private readonly List<Outbound> _pending = new();
    private bool _flushQueued;

    public NodeLinkActor(NodeLinks links)
    {
        _links = links;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(NodeLinks links) => Akka.Actor.Props.Create(() => new NodeLinkActor(links)).WithMailbox(LeanMailbox.ConfigPath);

    protected override void PreStart() =>
        _cluster.Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(Akka.Cluster.ClusterEvent.MemberUp), typeof(Akka.Cluster.ClusterEvent.MemberRemoved));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case Akka.Cluster.ClusterEvent.MemberUp up when !up.Member.Address.Equals(_cluster.SelfAddress):
                AskForLink(up.Member.Address);
                MembersChanged();
                break;
            case Akka.Cluster.ClusterEvent.MemberRemoved removed:
                _links.Forget(removed.Member.Address);
                _outbound.Remove(removed.Member.Address);
                MembersChanged();
                break;
            case AskForLinkAgain again when _cluster.State.Members.Any(m => m.Address.Equals(again.Node)):
                AskForLink(again.Node);
                break;
            case ActorIdentity { MessageId: Address node } identity:
                Timers.Cancel(node);
                _links.Linked(node, identity.Subject is not null);
                MembersChanged();
                break;
            case LinkSend send:
                Queue(send);
                break;
            case Flush:
                _flushQueued = false;
                foreach (var outbound in _pending)
                {
                    outbound.Send();
                }

                _pending.Clear();
                break;
            case LinkBatch batch:
                foreach (var item in batch.Items)
                {
                    item.Target.Tell(item.Message, ActorRefs.NoSender);
                }

                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>Asks a member for its link; an old version answers that it has none, an unreachable one not at all.</summary>
    private void AskForLink(Address node)
    {
        Context.ActorSelection(new RootActorPath(node) / "user" / Name).Tell(new Identify(node));
        Timers.StartSingleTimer(node, new AskForLinkAgain(node), AskAgainAfter);
    }

    private void MembersChanged() =>
        _links.MembersChanged(_cluster.State.Members
            .Where(m => m.Status is Akka.Cluster.MemberStatus.Up or Akka.Cluster.MemberStatus.WeaklyUp && !m.Address.Equals(_cluster.SelfAddress))
            .Select(m => m.Address));

    private void Queue(LinkSend send)
    {
        var address = send.Target.Path.Address;
        if (!_outbound.TryGetValue(address, out var outbound))
        {
            var peer = ((ExtendedActorSystem)Context.System).Provider.ResolveActorRef(new RootActorPath(address) / "user" / Name);
            outbound = new Outbound(peer);
            _outbound[address] = outbound;
        }

        if (outbound.Items.Count == 0)
        {
            _pending.Add(outbound);
            if (!_flushQueued)
            {
                _flushQueued = true;
                Self.Tell(Flush.Instance);
            }
        }

        outbound.Add(send.Target, send.Message);
    }

    private sealed class Outbound(IActorRef peer)
    {
        private int _bytes;

        public List<LinkItem> Items { get; private set; } = new();

        public void Add(IActorRef target, object message)
        {
            Items.Add(new LinkItem(target, message));
            _bytes += message is Routing.NodeDeliver nd ? nd.Message.Payload.Length : 0;
            if (Items.Count >= MaxItems || _bytes >= MaxBytes)
            {
                Send();
            }
        }

        public void Send()
        {
            if (Items.Count == 0)
            {
                return;
            }

            peer.Tell(new LinkBatch(Items), ActorRefs.NoSender);
            Items = new List<LinkItem>(Math.Min(Items.Count, MaxItems));
            _bytes = 0;
        }
    }

    private sealed record AskForLinkAgain(Address Node);

    private sealed class Flush
    {
        public static readonly Flush Instance = new();
    }
}
