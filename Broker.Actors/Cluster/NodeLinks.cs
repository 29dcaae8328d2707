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
/// </summary>
public sealed class NodeLinks
{
    private IActorRef _link = ActorRefs.Nobody;

    internal void Start(IActorRef link) => _link = link;

    /// <summary>Sends <paramref name="message"/> (an <see cref="IBrokerSerializable"/>) to <paramref name="target"/>.</summary>
    public void Tell(IActorRef target, object message)
    {
        if (target is IInternalActorRef { IsLocal: true } || _link.IsNobody())
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
public sealed class NodeLinkActor : UntypedActor
{
    public const string Name = "node-link";

    /// <summary>A batch is sent when it holds this many items even if more are queued.</summary>
    internal const int MaxItems = 512;

    /// <summary>A batch is sent when its payloads reach this many bytes (a large payload travels in a batch of its own).</summary>
    internal const int MaxBytes = 256 * 1024;

    private readonly Dictionary<Address, Outbound> _outbound = new();
    private readonly List<Outbound> _pending = new();
    private bool _flushQueued;

    public static Props Props() => Akka.Actor.Props.Create(() => new NodeLinkActor()).WithMailbox(LeanMailbox.ConfigPath);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
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

    private sealed class Flush
    {
        public static readonly Flush Instance = new();
    }
}
