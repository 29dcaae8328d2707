using Broker.Sessions;

namespace Broker.Persistence.Serialization;

/// <summary>Journal events and snapshots of <see cref="SessionEntity"/> (manifests "se-*").</summary>
public sealed partial class BrokerSerializer
{
    private static void WriteSessionEvent(BrokerBinaryWriter w, object obj)
    {
        switch (obj)
        {
            case SessionOpened e:
                w.VarUInt(e.ExpirySeconds);
                w.Will(e.Will);
                if (e.NextSeq is { } next)
                {
                    w.Long(next); // appended later: older events end before it
                }

                break;
            case SubscriptionAdded e:
                w.String(e.Filter);
                w.Options(e.Options);
                break;
            case SubscriptionRemoved e:
                w.String(e.Filter);
                break;
            case MessageQueued { Message.PayloadId: not 0 } e:
                WriteQueuedRef(w, e.Message);
                w.TrailingOrigin(e.Origin);
                break;
            case MessageQueued e:
                w.Queued(e.Message);
                w.TrailingOrigin(e.Origin);
                break;
            case InboundQos2Pending e:
                w.VarUInt(e.PacketId);
                w.Long(e.Stream);
                w.Long(e.Seq);
                w.Message(e.Message);
                break;
            case QueuedRefsDropped e:
                w.String(e.Topic);
                Ids(w, e.Ids);
                break;
            case MessageSent e:
                w.VarUInt(e.PacketId);
                break;
            case MessageDiscarded e:
                w.Long(e.Seq);
                break;
            case MessageReleased e:
                w.VarUInt(e.PacketId);
                break;
            case MessageCompleted e:
                w.VarUInt(e.PacketId);
                break;
            case InboundQos2Stored e:
                w.VarUInt(e.PacketId);
                break;
            case InboundQos2Released e:
                w.VarUInt(e.PacketId);
                break;
            case SessionSettingsChanged e:
                w.VarUInt(e.ExpirySeconds);
                w.Bool(e.WillCleared);
                break;
            case SessionDetached e:
                w.Long(e.AtUnixMs);
                if (e.SentBelow is { } sentBelow)
                {
                    w.Long(sentBelow); // appended later: older events end before it
                }

                break;
            case SharedMessagesHandedBack e:
                w.String(e.SharedFilter);
                break;
            case SessionSnapshot s:
                w.VarUInt(s.ExpirySeconds);
                w.Will(s.Will);
                w.VarUInt((ulong)s.Subscriptions.Count);
                foreach (var (filter, options) in s.Subscriptions)
                {
                    w.String(filter);
                    w.Options(options);
                }

                w.VarUInt((ulong)s.Queue.Count);
                foreach (var q in s.Queue)
                {
                    WriteQueuedAnyForm(w, q);
                }

                w.VarUInt((ulong)s.Inflight.Count);
                foreach (var i in s.Inflight)
                {
                    w.VarUInt(i.PacketId);
                    w.Bool(i.Released);
                    WriteQueuedAnyForm(w, i.Message);
                }

                w.VarUInt((ulong)s.InboundQos2.Count);
                foreach (var id in s.InboundQos2)
                {
                    w.VarUInt(id);
                }

                w.Long(s.DetachedAtUnixMs);

                // Appended later (older snapshots end here); see the COMPATIBILITY NOTES of BrokerSerializer.
                var pending = s.InboundPending ?? [];
                w.VarUInt((ulong)pending.Count);
                foreach (var p in pending)
                {
                    w.VarUInt(p.PacketId);
                    w.Long(p.Stream);
                    w.Long(p.Seq);
                    w.Message(p.Message);
                }

                w.Long(s.OriginStream);
                w.Long(s.OriginSeq);
                var seen = s.SeenOrigins ?? [];
                w.VarUInt((ulong)seen.Count);
                foreach (var o in seen)
                {
                    w.String(o.Publisher);
                    w.Long(o.Stream);
                    w.Long(o.LowWater);
                    w.VarUInt((ulong)o.Seqs.Count);
                    foreach (var seq in o.Seqs)
                    {
                        w.Long(seq);
                    }
                }

                // Appended later still: the messages' positions (see SessionSnapshot).
                w.Long(s.NextSeq);
                w.Long(s.SentBelow);
                foreach (var q in s.Queue)
                {
                    w.Long(q.Seq);
                }

                foreach (var i in s.Inflight)
                {
                    w.Long(i.Message.Seq);
                }

                break;
            default:
                throw new ArgumentException($"{obj.GetType()} is not serialized by {nameof(BrokerSerializer)}");
        }
    }

    private static object ReadSessionEvent(ref BrokerBinaryReader r, string manifest) => manifest switch
    {
        "se-o" => new SessionOpened(r.UInt(), r.Will(), r.AtEnd ? null : r.Long()),
        "se-c" => SessionCleared.Instance,
        "se-sa" => new SubscriptionAdded(r.RequiredString(), r.Options()),
        "se-sr" => new SubscriptionRemoved(r.RequiredString()),
        "se-q" => new MessageQueued(r.Queued(), r.TrailingOrigin()),
        "se-ip" => new InboundQos2Pending(checked((ushort)r.VarUInt()), r.Long(), r.Long(), r.Message()),
        "se-qr" => new MessageQueued(ReadQueuedRef(ref r), r.TrailingOrigin()),
        "se-qx" => new QueuedRefsDropped(r.RequiredString(), Ids(ref r)),
        "se-d" => QueueHeadDiscarded.Instance,
        "se-s" => new MessageSent(checked((ushort)r.VarUInt())),
        "se-e" => new MessageDiscarded(r.Long()),
        "se-r" => new MessageReleased(checked((ushort)r.VarUInt())),
        "se-x" => new MessageCompleted(checked((ushort)r.VarUInt())),
        "se-i" => new InboundQos2Stored(checked((ushort)r.VarUInt())),
        "se-ir" => new InboundQos2Released(checked((ushort)r.VarUInt())),
        "se-sc" => new SessionSettingsChanged(r.UInt(), r.Bool()),
        "se-h" => new SharedMessagesHandedBack(r.RequiredString()),
        "se-dt" => new SessionDetached(r.Long(), r.AtEnd ? null : r.Long()),
        "se-snap" => ReadSessionSnapshot(ref r, anyForm: false),
        "se-snap2" => ReadSessionSnapshot(ref r, anyForm: true),
        _ => throw new ArgumentException($"Unknown manifest '{manifest}' for {nameof(BrokerSerializer)}"),
    };

    /// <summary>"se-snap2" (<paramref name="anyForm"/>) marks each queued message inline or by reference; "se-snap" has only inline ones.</summary>
    private static SessionSnapshot ReadSessionSnapshot(ref BrokerBinaryReader r, bool anyForm)
    {
        var expiry = r.UInt();
        var will = r.Will();
        var subscriptionCount = checked((int)r.VarUInt());
        var subscriptions = new List<KeyValuePair<string, SubscriptionOptions>>(subscriptionCount);
        for (var i = 0; i < subscriptionCount; i++)
        {
            subscriptions.Add(new(r.RequiredString(), r.Options()));
        }

        var queueCount = checked((int)r.VarUInt());
        var queue = new List<QueuedMessage>(queueCount);
        for (var i = 0; i < queueCount; i++)
        {
            queue.Add(anyForm ? ReadQueuedAnyForm(ref r) : r.Queued());
        }

        var inflightCount = checked((int)r.VarUInt());
        var inflight = new List<InflightMessage>(inflightCount);
        for (var i = 0; i < inflightCount; i++)
        {
            var id = checked((ushort)r.VarUInt());
            var released = r.Bool();
            inflight.Add(new InflightMessage(id, anyForm ? ReadQueuedAnyForm(ref r) : r.Queued(), released));
        }

        var inboundCount = checked((int)r.VarUInt());
        var inbound = new List<ushort>(inboundCount);
        for (var i = 0; i < inboundCount; i++)
        {
            inbound.Add(checked((ushort)r.VarUInt()));
        }

        var detachedAt = r.Long();
        if (r.AtEnd)
        {
            return new SessionSnapshot(expiry, will, subscriptions, queue, inflight, inbound, detachedAt);
        }

        var pendingCount = checked((int)r.VarUInt());
        var pending = new List<InboundQos2Pending>(pendingCount);
        for (var i = 0; i < pendingCount; i++)
        {
            pending.Add(new InboundQos2Pending(checked((ushort)r.VarUInt()), r.Long(), r.Long(), r.Message()));
        }

        var originStream = r.Long();
        var originSeq = r.Long();
        var seenCount = checked((int)r.VarUInt());
        var seen = new List<SeenOrigin>(seenCount);
        for (var i = 0; i < seenCount; i++)
        {
            var publisher = r.RequiredString();
            var stream = r.Long();
            var lowWater = r.Long();
            var seqCount = checked((int)r.VarUInt());
            var seqs = new long[seqCount];
            for (var j = 0; j < seqCount; j++)
            {
                seqs[j] = r.Long();
            }

            seen.Add(new SeenOrigin(publisher, stream, lowWater, seqs));
        }

        long nextSeq = -1, sentBelow = 0;
        if (!r.AtEnd)
        {
            nextSeq = r.Long();
            sentBelow = r.Long();
            for (var i = 0; i < queue.Count; i++)
            {
                queue[i] = queue[i] with { Seq = r.Long() };
            }

            for (var i = 0; i < inflight.Count; i++)
            {
                inflight[i] = inflight[i] with { Message = inflight[i].Message with { Seq = r.Long() } };
            }
        }

        return new SessionSnapshot(
            expiry, will, subscriptions, queue, inflight, inbound, detachedAt, pending.Count == 0 ? null : pending, originStream, originSeq,
            seen.Count == 0 ? null : seen, nextSeq, sentBelow);
    }
}
