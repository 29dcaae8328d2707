using Akka.Actor;
using Akka.Serialization;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Persistence.Serialization;

/// <summary>
/// The serializer of every <see cref="IBrokerSerializable"/>: messages between nodes, journal events, snapshots.
/// Compact binary (see <see cref="BrokerBinaryWriter"/>); MQTT packets travel as their own v5 wire encoding.
/// <para>
/// COMPATIBILITY NOTES: the manifests below and the field order of each type are stored in journals and spoken
/// between nodes of different versions during a rolling upgrade. Never rename a manifest or reorder fields; add a new
/// type with a new manifest (and an event adapter for old events) instead. Identifier 4711 is fixed. An optional
/// field may be appended at the very end of a type when it is written as nothing when absent (readers stop before
/// bytes they do not know, and read "nothing left" as absent): the QoS 2 origin of "rp", "dl", "dlr" and "se-q", the
/// inbound QoS 2 origins, seen-origin memory and message positions at the end of "se-snap", the next position of
/// "se-o", the sent bound of "se-dt", and the live session's node and incarnation
/// of "st", "ut", "te-sa" and "te-sr" ("te-snap3" carries them for every subscriber; "te-snap2" had none).
/// </para>
/// </summary>
public sealed partial class BrokerSerializer : SerializerWithStringManifest
{
    public BrokerSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override int Identifier => 4711;

    public override string Manifest(object o) => o switch
    {
        RoutePublish => "rp",
        RoutePublishes => "rpb",
        PublishRouted => "pr",
        DeliveryStored => "ds",
        Deliver { PayloadId: not 0 } => "dlr",
        Deliver => "dl",
        HoldPayload => "ph",
        PayloadHeld => "phd",
        ReleasePayloads => "prl",
        FetchPayloads => "pf",
        PayloadsFetched => "pfd",
        CheckHolds => "pc",
        HoldsChecked => "pcd",
        SharedPayloadStored => "te-ps",
        SharedPayloadHoldersChanged => "te-ph",
        SubscribeTopic => "st",
        TopicSubscribed => "ts",
        UnsubscribeTopic => "ut",
        RequestRetained => "rr",
        RetainedRequestAnswered => "rra",
        RedeliverShared => "rs",
        AttachSession => "sa",
        StartLiveSession => "sls",
        ReturnSession => "rts",
        ReturnWanted => "rtw",
        SessionReturned => "srt",
        ClaimLiveSession => "cls",
        LiveSessionClaimed => "lsc",
        DelegationEnded => "dle",
        SessionAttached => "sat",
        SessionTakenOver => "sto",
        DetachSession => "sd",
        SessionSubscribe => "ss",
        SessionUnsubscribe => "su",
        OutboundAck => "oa",
        InboundQos2Publish => "iq",
        InboundRelease => "ir",
        SendPacket => "sp",
        SendPublish => "spub",
        InboundStoreFailed => "isf",
        InboundQos2Held => "iqh",
        WakeSession => "wks",
        ReplicaChange => "rc",
        ReplicaChangeApplied => "rca",
        WakeTopic => "wkt",
        SessionWoken => "wksd",
        TopicWoken => "wktd",
        TopicSubscriberAdded => "te-sa",
        TopicSubscriberRemoved => "te-sr",
        RetainedMessageSet => "te-rs",
        RetainedMessageCleared => "te-rc",
        TopicSnapshot => "te-snap3",
        NodeDeliver => "nd",
        Cluster.LinkBatch => "lb",
        JournalBatch => "jb",
        SessionOpened => "se-o",
        SessionCleared => "se-c",
        SubscriptionAdded => "se-sa",
        SubscriptionRemoved => "se-sr",
        MessageQueued { Message.PayloadId: not 0 } => "se-qr",
        MessageQueued => "se-q",
        QueuedRefsDropped => "se-qx",
        QueueHeadDiscarded => "se-d",
        MessageSent => "se-s",
        MessageDiscarded => "se-e",
        MessageReleased => "se-r",
        MessageCompleted => "se-x",
        InboundQos2Stored => "se-i",
        InboundQos2Released => "se-ir",
        InboundQos2Pending => "se-ip",
        SessionSettingsChanged => "se-sc",
        SharedMessagesHandedBack => "se-h",
        SessionDetached => "se-dt",
        SessionSnapshot => "se-snap2",
        _ => throw new ArgumentException($"{o.GetType()} is not serialized by {nameof(BrokerSerializer)}"),
    };

    public override byte[] ToBinary(object obj)
    {
        var w = new BrokerBinaryWriter();
        Write(w, obj);
        return w.ToArray();
    }

    private void Write(BrokerBinaryWriter w, object obj)
    {
        switch (obj)
        {
            case Cluster.LinkBatch m:
                WriteLinkBatch(w, m);
                break;
            case JournalBatch m:
                WriteJournalBatch(w, m);
                break;
            case RoutePublishes m:
                WriteRoutePublishes(w, m);
                break;
            case RoutePublish m:
                w.Message(m.Message);
                Ref(w, m.AckTo);
                w.Long(m.AckId);
                w.TrailingOrigin(m.Origin);
                break;
            case PublishRouted m:
                w.Long(m.AckId);
                w.VarUInt((ulong)m.Deliveries);
                break;
            case DeliveryStored m:
                w.Long(m.AckId);
                if (m.Count != 1 || m.Outcome != DeliveryOutcome.Stored)
                {
                    w.VarUInt((ulong)m.Count);
                }

                if (m.Outcome != DeliveryOutcome.Stored)
                {
                    w.VarUInt((ulong)m.Outcome);
                }

                break;
            case Deliver m:
                w.String(m.ClientId);
                w.Message(m.Message);
                w.String(m.SharedFilter);
                w.String(m.RetainedForFilter);
                Ref(w, m.AckTo);
                w.Long(m.AckId);
                if (m.PayloadId != 0)
                {
                    w.Long(m.PayloadId);
                }

                w.TrailingOrigin(m.Origin);
                break;
            case HoldPayload or PayloadHeld or ReleasePayloads or FetchPayloads or PayloadsFetched or CheckHolds or HoldsChecked
                or SharedPayloadStored or SharedPayloadHoldersChanged:
                WritePayloadMessage(w, obj);
                break;
            case SubscribeTopic m:
                w.String(m.Topic);
                w.String(m.ClientId);
                w.String(m.ShareGroup);
                w.Long(m.RequestId);
                TrailingNode(w, m.Node, m.Incarnation);
                break;
            case NodeDeliver m:
                w.Message(m.Message);
                w.VarUInt((ulong)m.Recipients.Count);
                foreach (var recipient in m.Recipients)
                {
                    w.String(recipient.ClientId);
                    w.Long(recipient.Incarnation);
                    w.String(recipient.SharedFilter);
                }

                Ref(w, m.AckTo);
                w.Long(m.AckId);
                w.Long(m.PayloadId);
                w.String(m.RetainedForFilter);
                w.Byte(m.FromEntity ? m.BackIfGone ? (byte)2 : (byte)1 : (byte)0);
                w.TrailingOrigin(m.Origin);
                break;
            case TopicSubscribed m:
                w.Long(m.RequestId);
                break;
            case UnsubscribeTopic m:
                w.String(m.Topic);
                w.String(m.ClientId);
                w.String(m.ShareGroup);
                TrailingNode(w, m.Node, m.Incarnation);
                break;
            case RequestRetained m:
                w.String(m.Topic);
                w.String(m.ClientId);
                w.String(m.Filter);
                TrailingNode(w, m.Node, m.Incarnation);
                break;
            case RetainedRequestAnswered m:
                w.String(m.Topic);
                w.String(m.Filter);
                break;
            case RedeliverShared m:
                w.Message(m.Message);
                w.String(m.Group);
                w.String(m.Filter);
                w.String(m.ExcludedClientId);
                break;
            case AttachSession m:
                WriteAttach(w, m);
                break;
            case StartLiveSession m:
                WriteAttach(w, m.Attach);
                w.Long(m.Incarnation);
                if (m.State is not null)
                {
                    w.Bytes(m.State);
                    w.Bool(m.Present);
                }

                break;
            case ReturnSession m:
                w.String(m.ClientId);
                w.Long(m.Incarnation);
                break;
            case ReturnWanted m:
                w.Long(m.Incarnation);
                break;
            case SessionReturned m:
                w.Long(m.Incarnation);
                w.Bytes(m.State);
                Ref(w, m.Connection);
                w.Bool(m.Leaving is not null);
                if (m.Leaving is { } leaving)
                {
                    Ref(w, leaving.Connection);
                    w.Bool(leaving.PublishWill);
                    w.NullableUInt(leaving.NewExpiry);
                }

                break;
            case ClaimLiveSession m:
                w.String(m.ClientId);
                Ref(w, m.Connection);
                w.Long(m.Incarnation);
                break;
            case LiveSessionClaimed m:
                w.Long(m.Incarnation);
                break;
            case DelegationEnded m:
                w.String(m.ClientId);
                w.Long(m.Incarnation);
                break;
            case SessionAttached m:
                w.Bool(m.SessionPresent);
                break;
            case SessionTakenOver:
            case SessionCleared:
            case QueueHeadDiscarded:
            case RetainedMessageCleared:
                break;
            case DetachSession m:
                Ref(w, m.Connection);
                w.Bool(m.PublishWill);
                w.NullableUInt(m.NewExpiry);
                break;
            case SessionSubscribe m:
                Ref(w, m.Connection);
                w.Packet(m.Packet);
                break;
            case SessionUnsubscribe m:
                Ref(w, m.Connection);
                w.Packet(m.Packet);
                break;
            case OutboundAck m:
                Ref(w, m.Connection);
                w.Byte((byte)m.Type);
                w.VarUInt(m.PacketId);
                w.Byte((byte)m.ReasonCode);
                break;
            case InboundQos2Publish m:
                Ref(w, m.Connection);
                w.Message(m.Message);
                w.VarUInt(m.PacketId);
                break;
            case InboundRelease m:
                Ref(w, m.Connection);
                w.VarUInt(m.PacketId);
                break;
            case SendPacket m:
                w.Packet(m.Packet);
                break;
            case ReplicaChange m:
                w.String(m.Element);
                w.Bool(m.Add);
                w.Long(m.CorrelationId);
                break;
            case ReplicaChangeApplied m:
                w.Long(m.CorrelationId);
                break;
            case WakeSession m:
                w.String(m.ClientId);
                break;
            case WakeTopic m:
                w.String(m.Topic);
                break;
            case SessionWoken m:
                w.String(m.ClientId);
                break;
            case TopicWoken m:
                w.String(m.Topic);
                break;
            case InboundQos2Held m:
                w.VarUInt(m.PacketId);
                break;
            case InboundStoreFailed m:
                w.VarUInt(m.PacketId);
                if (m.Refused)
                {
                    w.Bool(true);
                }

                break;
            case SendPublish m:
                w.Queued(m.Message);
                w.VarUInt(m.PacketId);
                w.Bool(m.Dup);
                if (m.ProbeTo is not null)
                {
                    Ref(w, m.ProbeTo);
                    w.Long(m.ProbeId);
                }

                break;
            case TopicSubscriberAdded m:
                w.String(m.ClientId);
                w.String(m.ShareGroup);
                TrailingNode(w, m.Node, m.Incarnation);
                break;
            case TopicSubscriberRemoved m:
                w.String(m.ClientId);
                w.String(m.ShareGroup);
                TrailingNode(w, m.Node, m.Incarnation);
                break;
            case RetainedMessageSet m:
                w.Message(m.Message);
                break;
            case TopicSnapshot m:
                w.VarUInt((ulong)m.Subscribers.Count);
                foreach (var s in m.Subscribers)
                {
                    w.String(s.ClientId);
                    w.String(s.ShareGroup);
                    w.String(s.Node);
                    w.Long(s.Incarnation);
                }

                w.Bool(m.Retained is not null);
                if (m.Retained is not null)
                {
                    w.Message(m.Retained);
                }

                w.VarUInt((ulong)m.Payloads.Count);
                foreach (var p in m.Payloads)
                {
                    WritePayloadMessage(w, p);
                }

                break;
            default:
                WriteSessionEvent(w, obj);
                break;
        }
    }

    public override object FromBinary(byte[] bytes, string manifest) => Read(bytes, manifest);

    private object Read(ReadOnlySpan<byte> bytes, string manifest)
    {
        var r = new BrokerBinaryReader(bytes);
        return manifest switch
        {
            "lb" => ReadLinkBatch(ref r),
            "jb" => ReadJournalBatch(ref r),
            "rpb" => ReadRoutePublishes(ref r),
            "rp" => new RoutePublish(r.Message(), Ref(ref r), r.Long(), r.TrailingOrigin()),
            "pr" => new PublishRouted(r.Long(), checked((int)r.VarUInt())),
            "ds" => ReadDeliveryStored(ref r),
            "dl" => new Deliver(r.RequiredString(), r.Message(), r.String(), r.String(), Ref(ref r), r.Long(), r.TrailingOrigin()),
            "dlr" => ReadDeliverWithPayloadId(ref r),
            "ph" or "phd" or "prl" or "pf" or "pfd" or "pc" or "pcd" or "te-ps" or "te-ph" => ReadPayloadMessage(ref r, manifest),
            "st" => ReadSubscribeTopic(ref r),
            "nd" => ReadNodeDeliver(ref r),
            "ts" => new TopicSubscribed(r.Long()),
            "ut" => ReadUnsubscribeTopic(ref r),
            "rr" => ReadRequestRetained(ref r),
            "rra" => new RetainedRequestAnswered(r.RequiredString(), r.RequiredString()),
            "rs" => new RedeliverShared(r.Message(), r.RequiredString(), r.RequiredString(), r.RequiredString()),
            "sa" => ReadAttach(ref r),
            "sls" => ReadStartLiveSession(ref r),
            "rts" => new ReturnSession(r.RequiredString(), r.Long()),
            "rtw" => new ReturnWanted(r.Long()),
            "srt" => ReadSessionReturned(ref r),
            "cls" => new ClaimLiveSession(r.RequiredString(), Ref(ref r) ?? ActorRefs.Nobody, r.Long()),
            "lsc" => new LiveSessionClaimed(r.Long()),
            "dle" => new DelegationEnded(r.RequiredString(), r.Long()),
            "sat" => new SessionAttached(r.Bool()),
            "sto" => SessionTakenOver.Instance,
            "sd" => new DetachSession(Ref(ref r) ?? ActorRefs.Nobody, r.Bool(), r.NullableUInt()),
            "ss" => new SessionSubscribe(Ref(ref r) ?? ActorRefs.Nobody, (MqttSubscribePacket)r.Packet()),
            "su" => new SessionUnsubscribe(Ref(ref r) ?? ActorRefs.Nobody, (MqttUnsubscribePacket)r.Packet()),
            "oa" => new OutboundAck(Ref(ref r) ?? ActorRefs.Nobody, (MqttPacketType)r.Byte(), checked((ushort)r.VarUInt()), (MqttReasonCode)r.Byte()),
            "iq" => new InboundQos2Publish(Ref(ref r) ?? ActorRefs.Nobody, r.Message(), checked((ushort)r.VarUInt())),
            "ir" => new InboundRelease(Ref(ref r) ?? ActorRefs.Nobody, checked((ushort)r.VarUInt())),
            "sp" => new SendPacket(r.Packet()),
            "spub" => ReadSendPublish(ref r),
            "isf" => new InboundStoreFailed(checked((ushort)r.VarUInt()), !r.AtEnd && r.Bool()),
            "iqh" => new InboundQos2Held(checked((ushort)r.VarUInt())),
            "wks" => new WakeSession(r.RequiredString()),
            "rc" => new ReplicaChange(r.RequiredString(), r.Bool(), r.Long()),
            "rca" => new ReplicaChangeApplied(r.Long()),
            "wkt" => new WakeTopic(r.RequiredString()),
            "wksd" => new SessionWoken(r.RequiredString()),
            "wktd" => new TopicWoken(r.RequiredString()),
            "te-sa" => ReadTopicSubscriberAdded(ref r),
            "te-sr" => ReadTopicSubscriberRemoved(ref r),
            "te-rs" => new RetainedMessageSet(r.Message()),
            "te-rc" => RetainedMessageCleared.Instance,
            "te-snap" => ReadTopicSnapshot(ref r, withPayloads: false, withNodes: false),
            "te-snap2" => ReadTopicSnapshot(ref r, withPayloads: true, withNodes: false),
            "te-snap3" => ReadTopicSnapshot(ref r, withPayloads: true, withNodes: true),
            _ => ReadSessionEvent(ref r, manifest),
        };
    }

    private void WriteAttach(BrokerBinaryWriter w, AttachSession m)
    {
        w.String(m.ClientId);
        Ref(w, m.Connection);
        w.Byte((byte)m.Info.Version);
        w.Bool(m.Info.CleanStart);
        w.VarUInt(m.Info.SessionExpiry);
        w.Will(m.Info.Will);
        w.VarUInt((ulong)m.Info.ReceiveMaximum);
    }

    private AttachSession ReadAttach(ref BrokerBinaryReader r) => new(
        r.RequiredString(),
        Ref(ref r) ?? ActorRefs.Nobody,
        new ConnectionInfo((MqttProtocolVersion)r.Byte(), r.Bool(), r.UInt(), r.Will(), checked((int)r.VarUInt())));

    private void Ref(BrokerBinaryWriter w, IActorRef? actorRef) =>
        w.String(actorRef is null || actorRef.IsNobody() ? null : Akka.Serialization.Serialization.SerializedActorPath(actorRef));

    /// <summary>"spub": the message, packet id and DUP; then, for a QoS 0 probe only, its reply address and id.</summary>
    private SendPublish ReadSendPublish(ref BrokerBinaryReader r)
    {
        var message = r.Queued();
        var packetId = checked((ushort)r.VarUInt());
        var dup = r.Bool();
        if (r.AtEnd)
        {
            return new SendPublish(message, packetId, dup);
        }

        return new SendPublish(message, packetId, dup, Ref(ref r), r.Long());
    }

    /// <summary>"dlr": a delivery whose payload the topic offers to store once; then the optional QoS 2 origin.</summary>
    private Deliver ReadDeliverWithPayloadId(ref BrokerBinaryReader r)
    {
        var clientId = r.RequiredString();
        var message = r.Message();
        var shared = r.String();
        var retainedFor = r.String();
        var ackTo = Ref(ref r);
        var ackId = r.Long();
        var payloadId = r.Long();
        return new Deliver(clientId, message, shared, retainedFor, ackTo, ackId, r.TrailingOrigin(), payloadId);
    }

    private IActorRef? Ref(ref BrokerBinaryReader r)
    {
        var path = r.String();
        return path is null ? null : system.Provider.ResolveActorRef(path);
    }

    /// <summary>The optional live-session location appended to "st", "ut", "te-sa" and "te-sr": nothing when absent.</summary>
    private static void TrailingNode(BrokerBinaryWriter w, string? node, long incarnation)
    {
        if (node is not null)
        {
            w.String(node);
            w.Long(incarnation);
        }
    }

    private static (string? Node, long Incarnation) TrailingNode(ref BrokerBinaryReader r) =>
        r.AtEnd ? (null, 0) : (r.String(), r.Long());

    /// <summary>AckId, then Count when not 1 (or an outcome follows), then the outcome when not Stored.</summary>
    private static DeliveryStored ReadDeliveryStored(ref BrokerBinaryReader r)
    {
        var ackId = r.Long();
        var count = r.AtEnd ? 1 : checked((int)r.VarUInt());
        var outcome = r.AtEnd ? DeliveryOutcome.Stored : (DeliveryOutcome)checked((byte)r.VarUInt());
        return new DeliveryStored(ackId, count, outcome);
    }

    private static SubscribeTopic ReadSubscribeTopic(ref BrokerBinaryReader r)
    {
        var (topic, clientId, group, requestId) = (r.RequiredString(), r.RequiredString(), r.String(), r.Long());
        var (node, incarnation) = TrailingNode(ref r);
        return new SubscribeTopic(topic, clientId, group, requestId, node, incarnation);
    }

    private static RequestRetained ReadRequestRetained(ref BrokerBinaryReader r)
    {
        var (topic, clientId, filter) = (r.RequiredString(), r.RequiredString(), r.RequiredString());
        var (node, incarnation) = TrailingNode(ref r);
        return new RequestRetained(topic, clientId, filter, node, incarnation);
    }

    private static UnsubscribeTopic ReadUnsubscribeTopic(ref BrokerBinaryReader r)
    {
        var (topic, clientId, group) = (r.RequiredString(), r.RequiredString(), r.String());
        var (node, incarnation) = TrailingNode(ref r);
        return new UnsubscribeTopic(topic, clientId, group, node, incarnation);
    }

    private static TopicSubscriberAdded ReadTopicSubscriberAdded(ref BrokerBinaryReader r)
    {
        var (clientId, group) = (r.RequiredString(), r.String());
        var (node, incarnation) = TrailingNode(ref r);
        return new TopicSubscriberAdded(clientId, group, node, incarnation);
    }

    private static TopicSubscriberRemoved ReadTopicSubscriberRemoved(ref BrokerBinaryReader r)
    {
        var (clientId, group) = (r.RequiredString(), r.String());
        var (node, incarnation) = TrailingNode(ref r);
        return new TopicSubscriberRemoved(clientId, group, node, incarnation);
    }

    private StartLiveSession ReadStartLiveSession(ref BrokerBinaryReader r)
    {
        var attach = ReadAttach(ref r);
        var incarnation = r.Long();
        return r.AtEnd ? new StartLiveSession(attach, incarnation) : new StartLiveSession(attach, incarnation, r.Bytes(), r.Bool());
    }

    private SessionReturned ReadSessionReturned(ref BrokerBinaryReader r)
    {
        var incarnation = r.Long();
        var state = r.Bytes();
        var connection = Ref(ref r);
        var leaving = r.Bool() ? new DetachSession(Ref(ref r) ?? ActorRefs.Nobody, r.Bool(), r.NullableUInt()) : null;
        return new SessionReturned(incarnation, state, connection, leaving);
    }

    private NodeDeliver ReadNodeDeliver(ref BrokerBinaryReader r)
    {
        var message = r.Message();
        var count = checked((int)r.VarUInt());
        var recipients = new NodeRecipient[count];
        for (var i = 0; i < count; i++)
        {
            recipients[i] = new NodeRecipient(r.RequiredString(), r.Long(), r.String());
        }

        var ackTo = Ref(ref r);
        var ackId = r.Long();
        var payloadId = r.Long();
        var retainedFor = r.String();
        var from = r.Byte();
        return new NodeDeliver(message, recipients, ackTo, ackId, r.TrailingOrigin(), payloadId, retainedFor, from != 0, BackIfGone: from == 2);
    }

    private static TopicSnapshot ReadTopicSnapshot(ref BrokerBinaryReader r, bool withPayloads, bool withNodes)
    {
        var count = checked((int)r.VarUInt());
        var subscribers = new List<SubscriberKey>(count);
        for (var i = 0; i < count; i++)
        {
            subscribers.Add(withNodes
                ? new SubscriberKey(r.RequiredString(), r.String(), r.String(), r.Long())
                : new SubscriberKey(r.RequiredString(), r.String()));
        }

        var retained = r.Bool() ? r.Message() : null;
        var payloads = new List<SharedPayloadStored>();
        if (withPayloads)
        {
            var payloadCount = checked((int)r.VarUInt());
            for (var i = 0; i < payloadCount; i++)
            {
                payloads.Add(ReadPayloadStored(ref r));
            }
        }

        return new TopicSnapshot(subscribers, retained, payloads);
    }
}
