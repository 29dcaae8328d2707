using Akka.Actor;
using Broker.Cluster;
using Broker.Routing;

namespace Broker.Persistence.Serialization;

/// <summary>
/// The batches: "rpb", <see cref="RoutePublishes"/>: the topic, the reply address once (the items' addresses are
/// one connection's), the count; per item a flag byte (1: it has the reply address, 2: a QoS 2 origin follows the
/// message), the message, its acknowledgement id and the origin.
/// "lb", a <see cref="LinkBatch"/>: the item count; then per item its target (a number: 0 when the path follows,
/// n for the n-th distinct path of this batch), its manifest and its own serialized form, length-prefixed, so that
/// each item reads as it would alone (optional trailing fields included).
/// "jb", a <see cref="JournalBatch"/> (a journal row of several events of one entity): the event count; per event its
/// manifest and its own serialized form, length-prefixed, likewise.
/// </summary>
public sealed partial class BrokerSerializer
{
    private void WriteLinkBatch(BrokerBinaryWriter w, LinkBatch batch)
    {
        w.VarUInt((ulong)batch.Items.Count);
        var targets = new Dictionary<IActorRef, int>();
        var item = new BrokerBinaryWriter();
        foreach (var (target, message) in batch.Items)
        {
            if (targets.TryGetValue(target, out var index))
            {
                w.VarUInt((ulong)index);
            }
            else
            {
                targets[target] = targets.Count + 1;
                w.VarUInt(0);
                Ref(w, target);
            }

            WriteNested(w, item, message);
        }
    }

    /// <summary>One item of a batch as it would be alone: its manifest, then its own form, length-prefixed (<paramref name="scratch"/> is reused).</summary>
    private void WriteNested(BrokerBinaryWriter w, BrokerBinaryWriter scratch, object message)
    {
        w.String(Manifest(message));
        scratch.Clear();
        Write(scratch, message);
        w.Bytes(scratch.WrittenSpan);
    }

    private object ReadNested(ref BrokerBinaryReader r)
    {
        var manifest = r.RequiredString();
        return Read(r.BytesInPlace(), manifest);
    }

    private LinkBatch ReadLinkBatch(ref BrokerBinaryReader r)
    {
        var count = checked((int)r.VarUInt());
        var items = new LinkItem[count];
        var targets = new List<IActorRef>();
        for (var i = 0; i < count; i++)
        {
            var index = checked((int)r.VarUInt());
            IActorRef target;
            if (index == 0)
            {
                target = Ref(ref r) ?? ActorRefs.Nobody;
                targets.Add(target);
            }
            else if (index <= targets.Count)
            {
                target = targets[index - 1];
            }
            else
            {
                throw new FormatException($"link batch item {i} names target {index} of {targets.Count}");
            }

            items[i] = new LinkItem(target, ReadNested(ref r));
        }

        return new LinkBatch(items);
    }

    private void WriteJournalBatch(BrokerBinaryWriter w, JournalBatch batch)
    {
        w.VarUInt((ulong)batch.Events.Count);
        var item = new BrokerBinaryWriter();
        foreach (var e in batch.Events)
        {
            WriteNested(w, item, e);
        }
    }

    private JournalBatch ReadJournalBatch(ref BrokerBinaryReader r)
    {
        var count = checked((int)r.VarUInt());
        var events = new object[count];
        for (var i = 0; i < count; i++)
        {
            events[i] = ReadNested(ref r);
        }

        return new JournalBatch(events);
    }

    private void WriteRoutePublishes(BrokerBinaryWriter w, RoutePublishes batch)
    {
        w.String(batch.Topic);
        var ackTo = batch.Items.Select(i => i.AckTo).FirstOrDefault(a => a is not null);
        Ref(w, ackTo);
        w.VarUInt((ulong)batch.Items.Count);
        foreach (var item in batch.Items)
        {
            if (item.AckTo is not null && !item.AckTo.Equals(ackTo))
            {
                throw new ArgumentException("the publishes of one batch answer one address");
            }

            w.Byte((byte)((item.AckTo is null ? 0 : 1) | (item.Origin is null ? 0 : 2)));
            w.Message(item.Message);
            w.Long(item.AckId);
            w.TrailingOrigin(item.Origin);
        }
    }

    private RoutePublishes ReadRoutePublishes(ref BrokerBinaryReader r)
    {
        var topic = r.RequiredString();
        var ackTo = Ref(ref r);
        var count = checked((int)r.VarUInt());
        var items = new RoutePublish[count];
        for (var i = 0; i < count; i++)
        {
            var flags = r.Byte();
            var message = r.Message();
            var ackId = r.Long();
            var origin = (flags & 2) != 0 ? new MessageOrigin(r.Long(), r.Long(), r.Long()) : null;
            items[i] = new RoutePublish(message, (flags & 1) != 0 ? ackTo : null, ackId, origin);
        }

        return new RoutePublishes(topic, items);
    }
}
