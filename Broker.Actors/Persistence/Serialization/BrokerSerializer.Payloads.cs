using Broker.Routing;
using Broker.Sessions;

namespace Broker.Persistence.Serialization;

/// <summary>
/// Payloads stored once by the topic entity for several sessions (manifests "ph*", "p*", "te-ps", "te-ph") and the
/// session's reference form of a queued message ("se-qr": the message without its payload, then the payload id).
/// </summary>
public sealed partial class BrokerSerializer
{
    private static void WritePayloadMessage(BrokerBinaryWriter w, object obj)
    {
        switch (obj)
        {
            case HoldPayload m:
                w.String(m.Topic);
                w.String(m.ClientId);
                w.Long(m.Id);
                w.Bool(m.Message is not null);
                if (m.Message is not null)
                {
                    w.Message(m.Message);
                }

                break;
            case PayloadHeld m:
                w.String(m.Topic);
                w.Long(m.Id);
                w.Bool(m.Stored);
                break;
            case ReleasePayloads m:
                w.String(m.Topic);
                w.String(m.ClientId);
                Ids(w, m.Ids);
                break;
            case FetchPayloads m:
                w.String(m.Topic);
                w.String(m.ClientId);
                Ids(w, m.Ids);
                break;
            case PayloadsFetched m:
                w.String(m.Topic);
                w.VarUInt((ulong)m.Payloads.Count);
                foreach (var p in m.Payloads)
                {
                    w.Long(p.Id);
                    w.Bytes(p.Payload.Span);
                }

                w.Bool(m.Last);
                break;
            case CheckHolds m:
                w.String(m.ClientId);
                w.String(m.Topic);
                Ids(w, m.Ids);
                break;
            case HoldsChecked m:
                w.String(m.Topic);
                w.String(m.ClientId);
                Ids(w, m.NotHeld);
                break;
            case SharedPayloadStored m:
                w.Long(m.Id);
                w.Message(m.Message);
                w.VarUInt((ulong)m.Holders.Count);
                foreach (var holder in m.Holders)
                {
                    w.String(holder);
                }

                break;
            case SharedPayloadHoldersChanged m:
                w.VarUInt((ulong)m.Changes.Count);
                foreach (var c in m.Changes)
                {
                    w.Long(c.Id);
                    w.String(c.ClientId);
                    w.Bool(c.Added);
                }

                break;
            default:
                throw new ArgumentException($"{obj.GetType()} is not serialized by {nameof(BrokerSerializer)}");
        }
    }

    private static object ReadPayloadMessage(ref BrokerBinaryReader r, string manifest)
    {
        switch (manifest)
        {
            case "ph":
                return new HoldPayload(r.RequiredString(), r.RequiredString(), r.Long(), r.Bool() ? r.Message() : null);
            case "phd":
                return new PayloadHeld(r.RequiredString(), r.Long(), r.Bool());
            case "prl":
                return new ReleasePayloads(r.RequiredString(), r.RequiredString(), Ids(ref r));
            case "pf":
                return new FetchPayloads(r.RequiredString(), r.RequiredString(), Ids(ref r));
            case "pfd":
            {
                var topic = r.RequiredString();
                var count = checked((int)r.VarUInt());
                var payloads = new List<FetchedPayload>(count);
                for (var i = 0; i < count; i++)
                {
                    payloads.Add(new FetchedPayload(r.Long(), r.Bytes()));
                }

                return new PayloadsFetched(topic, payloads, r.Bool());
            }

            case "pc":
                return new CheckHolds(r.RequiredString(), r.RequiredString(), Ids(ref r));
            case "pcd":
                return new HoldsChecked(r.RequiredString(), r.RequiredString(), Ids(ref r));
            case "te-ps":
                return ReadPayloadStored(ref r);
            case "te-ph":
            {
                var count = checked((int)r.VarUInt());
                var changes = new List<HolderChange>(count);
                for (var i = 0; i < count; i++)
                {
                    changes.Add(new HolderChange(r.Long(), r.RequiredString(), r.Bool()));
                }

                return new SharedPayloadHoldersChanged(changes);
            }

            default:
                throw new ArgumentException($"Unknown manifest '{manifest}' for {nameof(BrokerSerializer)}");
        }
    }

    private static SharedPayloadStored ReadPayloadStored(ref BrokerBinaryReader r)
    {
        var id = r.Long();
        var message = r.Message();
        var count = checked((int)r.VarUInt());
        var holders = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            holders.Add(r.RequiredString());
        }

        return new SharedPayloadStored(id, message, holders);
    }

    /// <summary>A queued message as a session journals it: inline, or (PayloadId set) without its payload.</summary>
    private static void WriteQueuedAnyForm(BrokerBinaryWriter w, QueuedMessage q)
    {
        w.Bool(q.PayloadId != 0);
        if (q.PayloadId == 0)
        {
            w.Queued(q);
            return;
        }

        WriteQueuedRef(w, q);
    }

    private static QueuedMessage ReadQueuedAnyForm(ref BrokerBinaryReader r) => r.Bool() ? ReadQueuedRef(ref r) : r.Queued();

    private static void WriteQueuedRef(BrokerBinaryWriter w, QueuedMessage q)
    {
        w.Queued(q with { Message = q.Message with { Payload = ReadOnlyMemory<byte>.Empty } });
        w.Long(q.PayloadId);
    }

    /// <summary>The reference form: the payload stays empty until the session fetches it from the topic entity.</summary>
    private static QueuedMessage ReadQueuedRef(ref BrokerBinaryReader r)
    {
        var q = r.Queued();
        return q with { PayloadId = r.Long() };
    }

    private static void Ids(BrokerBinaryWriter w, IReadOnlyList<long> ids)
    {
        w.VarUInt((ulong)ids.Count);
        foreach (var id in ids)
        {
            w.Long(id);
        }
    }

    private static List<long> Ids(ref BrokerBinaryReader r)
    {
        var count = checked((int)r.VarUInt());
        var ids = new List<long>(count);
        for (var i = 0; i < count; i++)
        {
            ids.Add(r.Long());
        }

        return ids;
    }
}
