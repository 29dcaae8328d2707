using System.Collections.Immutable;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Broker.Cluster;
using Broker.Configuration;
using Broker.Persistence.Serialization;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Tests.Serialization;

/// <summary>
/// Every <see cref="IBrokerSerializable"/> type (found by reflection, so a new type without a sample fails this spec)
/// goes through the broker's own serializer, never Akka's default JSON, and comes back equal.
/// </summary>
public sealed class BrokerSerializerSpecs : IDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _ref;
    private readonly IActorRef _other;

    public BrokerSerializerSpecs()
    {
        var options = new BrokerOptions { Cluster = new ClusterOptions { Port = 0 } };
        var config = ConfigurationFactory.ParseString(BrokerHocon.Build(options).Replace("provider = cluster", "provider = remote"));
        _system = ActorSystem.Create("serializer-spec", config);
        _ref = _system.ActorOf(Props.Empty, "someone");
        _other = _system.ActorOf(Props.Empty, "someone-else");
    }

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));

    private static readonly MqttMessageProperties FullProperties = new()
    {
        PayloadFormatIndicator = 1,
        MessageExpiryInterval = 60,
        ContentType = "application/json",
        ResponseTopic = "reply/to",
        CorrelationData = new byte[] { 1, 2, 3 },
        UserProperties = [new MqttUserProperty("k", "v"), new MqttUserProperty("k", "v2")],
    };

    private static readonly MqttApplicationMessage Message =
        new("a/b", new byte[] { 9, 8, 7 }, MqttQoS.ExactlyOnce, true, FullProperties, "publisher", 1_700_000_000_000);

    private static readonly MqttWill Will = new()
    {
        Topic = "will/t", Payload = new byte[] { 5 }, QoS = MqttQoS.AtLeastOnce, Retain = true, DelayInterval = 30, Properties = FullProperties,
    };

    private static readonly QueuedMessage Queued = new(Message, MqttQoS.AtLeastOnce, true, [7, 9], "$share/g/a/#");

    private const string LiveNode = "akka.tcp://broker@127.0.0.1:4053#-1234567";

    private static readonly MessageOrigin Origin = new(-8_070_450_532_247_928_832, 42, 40);

    private static readonly SubscriptionOptions Options = new(MqttQoS.ExactlyOnce, true, true, MqttRetainHandling.DoNotSend, 42);

    private IEnumerable<object> Samples()
    {
        yield return new RoutePublish(Message, _ref, 17);
        yield return new RoutePublish(Message, _ref, 17, Origin);
        yield return new RoutePublish(Message with { Properties = MqttMessageProperties.Empty, ExpiresAtUnixMs = 0 }, null, 0);
        yield return new RoutePublishes("a/b", [new RoutePublish(Message, _ref, 17), new RoutePublish(Message, null, 0), new RoutePublish(Message, _ref, 18, Origin)]);
        yield return new RoutePublishes("a/b", [new RoutePublish(Message, null, 0), new RoutePublish(Message, null, 0)]);
        yield return new PublishRouted(17, 3);
        yield return new DeliveryStored(17);
        yield return new DeliveryStored(17, 40);
        yield return new DeliveryStored(17, 0, DeliveryOutcome.Held);
        yield return new DeliveryStored(17, 1, DeliveryOutcome.Refused);
        yield return new Deliver("c1", Message, "$share/g/a/b", null, _ref, 5);
        yield return new Deliver("c1", Message, null, "a/#", null, 0);
        yield return new Deliver("c1", Message, null, null, _ref, 5, Origin);
        yield return new SubscribeTopic("a/b", "c1", "g", 3);
        yield return new SubscribeTopic("a/b", "c1", null, 3);
        yield return new TopicSubscribed(3);
        yield return new UnsubscribeTopic("a/b", "c1", null);
        yield return new SubscribeTopic("a/b", "c1", "g", 3, LiveNode, long.MaxValue);
        yield return new UnsubscribeTopic("a/b", "c1", null, LiveNode, 7);
        yield return new RequestRetained("a/b", "c1", "a/+");
        yield return new RequestRetained("a/b", "c1", "a/+", LiveNode, 7);
        yield return new RetainedRequestAnswered("a/b", "a/+");
        yield return new NodeDeliver(Message, [new NodeRecipient("c1", 7, null), new NodeRecipient("c2", long.MaxValue, "$share/g/a/b")], _ref, 5, Origin, 3);
        yield return new NodeDeliver(Message, [new NodeRecipient("c1", 7, null)], null, 0, RetainedForFilter: "a/#", FromEntity: true);
        yield return new LinkBatch([
            new LinkItem(_ref, new DeliveryStored(17)),
            new LinkItem(_other, new PublishRouted(17, 3)),
            new LinkItem(_ref, new DeliveryStored(18, 40)),
            new LinkItem(_ref, new NodeDeliver(Message, [new NodeRecipient("c1", 7, null)], _ref, 5, Origin, 3)),
        ]);
        yield return new LinkBatch([]);
        yield return new Broker.Persistence.JournalBatch([
            new MessageQueued(Queued, Origin), new MessageQueued(QueuedByRef), new MessageSent(7), new MessageCompleted(7),
            new SubscriptionAdded("a/#", Options), new TopicSubscriberAdded("c1", null, LiveNode, 9),
        ]);
        yield return new StartLiveSession(new AttachSession("c1", _ref, new ConnectionInfo(MqttProtocolVersion.V500, true, 0, Will, 10)), 7);
        yield return new StartLiveSession(new AttachSession("c1", _ref, new ConnectionInfo(MqttProtocolVersion.V500, false, 3600, null, 10)), 7,
            [1, 2, 3, 0, 255], Present: true);
        yield return new ReturnSession("c1", 7);
        yield return new ReturnWanted(7);
        yield return new SessionReturned(7, [9, 8, 7], _ref, null);
        yield return new SessionReturned(7, [], null, new DetachSession(_ref, true, 60));
        yield return new NodeDeliver(Message, [new NodeRecipient("c1", 7, null)], _ref, 4, Origin, 3, FromEntity: true, BackIfGone: true);
        yield return new ClaimLiveSession("c1", _ref, 7);
        yield return new LiveSessionClaimed(7);
        yield return new DelegationEnded("live-client", 7);
        yield return new RedeliverShared(Message, "g", "a/#", "c1");
        yield return new AttachSession("c1", _ref, new ConnectionInfo(MqttProtocolVersion.V500, false, 3600, Will, 10));
        yield return new AttachSession("c1", _ref, new ConnectionInfo(MqttProtocolVersion.V311, true, 0, null, 65535));
        yield return new SessionAttached(true);
        yield return SessionTakenOver.Instance;
        yield return new DetachSession(_ref, true, 99);
        yield return new DetachSession(_ref, false, null);
        yield return new SessionSubscribe(_ref, new MqttSubscribePacket
        {
            PacketId = 4, SubscriptionIdentifier = 42, UserProperties = [new MqttUserProperty("a", "b")],
            Subscriptions = [new MqttTopicSubscription { TopicFilter = "a/#", QoS = MqttQoS.AtLeastOnce, NoLocal = true, RetainAsPublished = true, RetainHandling = MqttRetainHandling.SendAtSubscribeIfNew }],
        });
        yield return new SessionUnsubscribe(_ref, new MqttUnsubscribePacket { PacketId = 5, TopicFilters = ["a/#", "b"] });
        yield return new OutboundAck(_ref, MqttPacketType.PubRec, 7, MqttReasonCode.NoMatchingSubscribers);
        yield return new InboundQos2Publish(_ref, Message, 8);
        yield return new InboundRelease(_ref, 8);
        yield return new SendPacket(new MqttSubAckPacket { PacketId = 4, ReasonCodes = [MqttReasonCode.GrantedQoS1, MqttReasonCode.TopicFilterInvalid] });
        yield return new SendPacket(new MqttPubRelPacket { PacketId = 9 });
        yield return new SendPublish(Queued, 12, true);
        yield return new SendPublish(Queued with { QoS = MqttQoS.AtMostOnce }, 0, false, _ref, long.MinValue + 3);
        yield return new InboundStoreFailed(12);
        yield return new InboundStoreFailed(12, Refused: true);
        yield return new InboundQos2Held(12);
        yield return new WakeSession("c1");
        yield return new ReplicaChange("a/#\u0000c1\u0000", true, 42);
        yield return new ReplicaChangeApplied(42);
        yield return new WakeTopic("a/b");
        yield return new SessionWoken("c1");
        yield return new TopicWoken("a/b");
        yield return new SessionDetached(1_700_000_000_123);
        yield return new SessionDetached(1_700_000_000_123, 70_000);
        yield return new TopicSubscriberAdded("c1", "g");
        yield return new TopicSubscriberRemoved("c1", null);
        yield return new TopicSubscriberAdded("c1", null, LiveNode, 7);
        yield return new TopicSubscriberRemoved("c1", "g", LiveNode, long.MinValue);
        yield return new TopicSnapshot([new SubscriberKey("c1", null, LiveNode, 7), new SubscriberKey("c2", "g")], null, []);
        yield return new RetainedMessageSet(Message);
        yield return RetainedMessageCleared.Instance;
        yield return new TopicSnapshot([new SubscriberKey("c1", null), new SubscriberKey("c2", "g")], Message, [new SharedPayloadStored(7, Message, ["c1", "c2"])]);
        yield return new TopicSnapshot([], null, []);
        yield return new Deliver("c1", Message, null, null, _ref, 5, PayloadId: 0x1234_0000_0001);
        yield return new Deliver("c1", Message, null, null, _ref, 5, Origin, 0x1234_0000_0001);
        yield return new HoldPayload("a/b", "c1", 0x1234_0000_0001, null);
        yield return new HoldPayload("a/b", "c1", 3, Message);
        yield return new PayloadHeld("a/b", 3, true);
        yield return new PayloadHeld("a/b", 3, false);
        yield return new ReleasePayloads("a/b", "c1", [3, 4]);
        yield return new FetchPayloads("a/b", "c1", [3, long.MaxValue]);
        yield return new PayloadsFetched("a/b", [new FetchedPayload(3, new byte[] { 1, 2 }), new FetchedPayload(4, ReadOnlyMemory<byte>.Empty)], true);
        yield return new PayloadsFetched("a/b", [], false);
        yield return new CheckHolds("c1", "a/b", [3]);
        yield return new HoldsChecked("a/b", "c1", []);
        yield return new SharedPayloadStored(3, Message, ["c1"]);
        yield return new SharedPayloadHoldersChanged([new HolderChange(3, "c1", true), new HolderChange(4, "c2", false)]);
        yield return new MessageQueued(QueuedByRef);
        yield return new MessageQueued(QueuedByRef, Origin);
        yield return new QueuedRefsDropped("a/b", [3, 4]);
        yield return new SessionOpened(3600, Will);
        yield return new SessionOpened(0, null);
        yield return new SessionOpened(3600, null, 65_536);
        yield return SessionCleared.Instance;
        yield return new SubscriptionAdded("a/#", Options);
        yield return new SubscriptionRemoved("a/#");
        yield return new MessageQueued(Queued);
        yield return new MessageQueued(Queued, Origin);
        yield return new InboundQos2Pending(65535, Origin.Stream, 43, Message);
        yield return QueueHeadDiscarded.Instance;
        yield return new MessageSent(65535);
        yield return new MessageDiscarded(long.MaxValue);
        yield return new MessageReleased(1);
        yield return new MessageCompleted(2);
        yield return new InboundQos2Stored(3);
        yield return new InboundQos2Released(4);
        yield return new SessionSettingsChanged(10, true);
        yield return new SharedMessagesHandedBack("$share/g/a");
        yield return new SessionSnapshot(
            3600, Will, [new("a/#", Options)], [Queued, QueuedByRef], [new InflightMessage(3, Queued, true), new InflightMessage(4, QueuedByRef, false)], [1, 2], 1_700_000_000_999);
        yield return new SessionSnapshot(
            3600, Will, [new("a/#", Options)], [Queued], [new InflightMessage(3, Queued, true)], [1, 2], 1_700_000_000_999,
            [new InboundQos2Pending(9, Origin.Stream, 44, Message)], Origin.Stream, 44,
            [new SeenOrigin("p1", 17, 3, [3, 4, 9]), new SeenOrigin("p2", -5, 0, [])]);
        yield return new SessionSnapshot(
            3600, null, [], [Queued with { Seq = 70_001 }, QueuedByRef with { Seq = 70_002 }], [new InflightMessage(4465, Queued with { Seq = 69_999 }, false)], [], 0,
            null, 0, 0, null, 70_003, 70_000);
    }

    /// <summary>A queued message held by reference, as recovery sees it: the payload comes from the topic entity.</summary>
    private static readonly QueuedMessage QueuedByRef =
        Queued with { Message = Message with { Payload = ReadOnlyMemory<byte>.Empty }, PayloadId = 0x7fff_0000_0002 };

    [Fact]
    public void A_message_queued_by_reference_is_journaled_without_its_payload_and_an_inline_one_with_it()
    {
        var serializer = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(new DeliveryStored(1));
        var payload = new byte[4096];
        Random.Shared.NextBytes(payload);
        var inline = new MessageQueued(Queued with { Message = Message with { Payload = payload } });
        var byRef = new MessageQueued(inline.Message with { PayloadId = 42 });

        var inlineBytes = serializer.ToBinary(inline);
        var refBytes = serializer.ToBinary(byRef);
        Assert.Equal("se-q", serializer.Manifest(inline));
        Assert.Equal("se-qr", serializer.Manifest(byRef));
        Assert.True(inlineBytes.Length > payload.Length, $"inline form is {inlineBytes.Length} bytes");
        Assert.True(refBytes.Length < 200, $"reference form is {refBytes.Length} bytes");

        var back = (MessageQueued)serializer.FromBinary(refBytes, "se-qr");
        Assert.Equal(42, back.Message.PayloadId);
        Assert.True(back.Message.Message.Payload.IsEmpty);
        Assert.Equal(inline.Message.Message.Topic, back.Message.Message.Topic);
        Assert.Equal(payload, ((MessageQueued)serializer.FromBinary(inlineBytes, "se-q")).Message.Message.Payload.ToArray());
    }

    [Fact]
    public void Snapshots_of_earlier_versions_still_read()
    {
        // "te-snap" and "se-snap" as written before payloads could be shared: same fields, nothing after them.
        var serializer = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(new DeliveryStored(1));
        var topicV1 = new BrokerBinaryWriter();
        topicV1.VarUInt(1);
        topicV1.String("c1");
        topicV1.String(null);
        topicV1.Bool(false);
        var topic = (TopicSnapshot)serializer.FromBinary(topicV1.ToArray(), "te-snap");
        Assert.Equal([new SubscriberKey("c1", null)], topic.Subscribers);
        Assert.Empty(topic.Payloads);

        var sessionV1 = new BrokerBinaryWriter();
        sessionV1.VarUInt(60);
        sessionV1.Will(null);
        sessionV1.VarUInt(0);
        sessionV1.VarUInt(1);
        sessionV1.Queued(Queued);
        sessionV1.VarUInt(0);
        sessionV1.VarUInt(0);
        sessionV1.Long(5);
        var session = (SessionSnapshot)serializer.FromBinary(sessionV1.ToArray(), "se-snap");
        Assert.Equal(Describe(Queued), Describe(Assert.Single(session.Queue)));
    }

    [Fact]
    public void Every_broker_serializable_type_has_a_sample_here()
    {
        var types = typeof(IBrokerSerializable).Assembly.GetTypes()
            .Where(t => typeof(IBrokerSerializable).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .ToHashSet();
        var covered = Samples().Select(s => s.GetType()).ToHashSet();
        Assert.Empty(types.Except(covered).Select(t => t.FullName));
    }

    [Fact]
    public void Every_sample_round_trips_through_the_broker_serializer_and_not_json()
    {
        var serialization = _system.Serialization;
        foreach (var sample in Samples())
        {
            var serializer = serialization.FindSerializerFor(sample);
            Assert.IsType<BrokerSerializer>(serializer);
            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, sample);
            var bytes = serializer.ToBinary(sample);
            var back = serialization.Deserialize(bytes, serializer.Identifier, manifest);
            Assert.Equal(Describe(sample), Describe(back));
        }
    }

    [Fact]
    public void What_older_versions_wrote_without_a_QoS_2_origin_still_reads_and_as_before()
    {
        var serializer = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(new DeliveryStored(1));
        object RoundTrip(object o, int cut) => serializer.FromBinary(serializer.ToBinary(o)[..^cut], serializer.Manifest(o));

        // Without an origin, nothing is appended: the bytes are those of the version before the field existed.
        var origin = 3 * sizeof(long);
        Assert.Equal(serializer.ToBinary(new MessageQueued(Queued)), serializer.ToBinary(new MessageQueued(Queued, Origin))[..^origin]);
        Assert.Equal(serializer.ToBinary(new RoutePublish(Message, _ref, 3)), serializer.ToBinary(new RoutePublish(Message, _ref, 3, Origin))[..^origin]);
        Assert.Null(((MessageQueued)RoundTrip(new MessageQueued(Queued, Origin), origin)).Origin);
        Assert.Null(((RoutePublish)RoundTrip(new RoutePublish(Message, _ref, 3, Origin), origin)).Origin);
        Assert.Null(((Deliver)RoundTrip(new Deliver("c", Message, null, null, _ref, 3, Origin), origin)).Origin);

        // A snapshot written before the messages' positions ends after the seen origins (next position, sent bound
        // and one position per message are 8 bytes each): it reads as an older snapshot (next position -1), whose
        // messages are numbered on restore.
        var positions = 3 * sizeof(long);
        var snapshot = new SessionSnapshot(60, null, [new("a/#", Options)], [Queued], [], [5], 77);
        var positioned = snapshot with { Queue = [Queued with { Seq = 12 }], NextSeq = 13, SentBelow = 12 };
        Assert.Equal(Describe(snapshot), Describe(RoundTrip(positioned, positions)));

        // One written before the inbound QoS 2 origins ends after DetachedAtUnixMs (empty pending list, stream,
        // sequence, empty seen list are 1 + 8 + 8 + 1 bytes).
        var old = (SessionSnapshot)RoundTrip(snapshot, 18 + positions);
        Assert.Equal(Describe(snapshot), Describe(old));
    }

    [Fact]
    public void Session_events_written_before_packet_ids_came_from_positions_still_read()
    {
        var serializer = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(new DeliveryStored(1));
        object RoundTrip(object o, int cut) => serializer.FromBinary(serializer.ToBinary(o)[..^cut], serializer.Manifest(o));

        // The next position of "se-o" and the sent bound of "se-dt" are appended; without them, the older bytes.
        Assert.Equal(serializer.ToBinary(new SessionOpened(60, Will)), serializer.ToBinary(new SessionOpened(60, Will, 9))[..^sizeof(long)]);
        Assert.Null(((SessionOpened)RoundTrip(new SessionOpened(60, Will, 9), sizeof(long))).NextSeq);
        Assert.Equal(serializer.ToBinary(new SessionDetached(5)), serializer.ToBinary(new SessionDetached(5, 9))[..^sizeof(long)]);
        Assert.Null(((SessionDetached)RoundTrip(new SessionDetached(5, 9), sizeof(long))).SentBelow);
    }

    [Fact]
    public void Routes_written_before_live_sessions_existed_read_as_routes_to_session_entities()
    {
        var serializer = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(new DeliveryStored(1));
        byte[] Cut(object o) => serializer.ToBinary(o);
        object Old(object withoutNode, object withNode) =>
            serializer.FromBinary(Cut(withNode)[..Cut(withoutNode).Length], serializer.Manifest(withNode));

        // The node and incarnation are appended at the end: an older writer's bytes are the newer ones cut before them.
        Assert.Equal(Cut(new SubscribeTopic("a/b", "c1", "g", 3)), Cut(new SubscribeTopic("a/b", "c1", "g", 3, LiveNode, 9))[..Cut(new SubscribeTopic("a/b", "c1", "g", 3)).Length]);
        Assert.Null(((SubscribeTopic)Old(new SubscribeTopic("a/b", "c1", "g", 3), new SubscribeTopic("a/b", "c1", "g", 3, LiveNode, 9))).Node);
        Assert.Null(((TopicSubscriberAdded)Old(new TopicSubscriberAdded("c1", null), new TopicSubscriberAdded("c1", null, LiveNode, 9))).Node);
        Assert.Null(((TopicSubscriberRemoved)Old(new TopicSubscriberRemoved("c1", null), new TopicSubscriberRemoved("c1", null, LiveNode, 9))).Node);
        Assert.Null(((UnsubscribeTopic)Old(new UnsubscribeTopic("a/b", "c1", null), new UnsubscribeTopic("a/b", "c1", null, LiveNode, 9))).Node);
        Assert.Null(((RequestRetained)Old(new RequestRetained("a/b", "c1", "a/+"), new RequestRetained("a/b", "c1", "a/+", LiveNode, 9))).Node);

        // Wildcard routes in the replicated set: three parts before, five for a live session.
        Assert.Equal(("a/#", new SubscriberKey("c1", null)), WildcardIndexActor.Decode("a/#\u0000c1\u0000"));
        var live = new SubscriberKey("c1", "g", LiveNode, -5);
        Assert.Equal(("a/#", live), WildcardIndexActor.Decode(WildcardIndexActor.Encode("a/#", live)));
    }

    [Fact]
    public void Actor_references_resolve_to_the_same_actor()
    {
        var serializer = (SerializerWithStringManifest)_system.Serialization.FindSerializerFor(new DeliveryStored(1));
        var bytes = serializer.ToBinary(new RoutePublish(Message, _ref, 1));
        var back = (RoutePublish)serializer.FromBinary(bytes, serializer.Manifest(new RoutePublish(Message, _ref, 1)));
        Assert.Equal(_ref.Path, back.AckTo!.Path);
    }

    /// <summary>Structural text of a value (records print their members; byte arrays and collections by content).</summary>
    private static string Describe(object? value) => value switch
    {
        null => "null",
        string s => '"' + s + '"',
        IActorRef r => r.Path.ToStringWithoutAddress(),
        ReadOnlyMemory<byte> m => Convert.ToHexString(m.Span),
        byte[] b => Convert.ToHexString(b),
        System.Collections.IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Describe)) + "]",
        _ when value.GetType().IsPrimitive || value is Enum || value is decimal => value.ToString()!,
        _ => value.GetType().Name + "{" + string.Join(";", value.GetType().GetProperties()
            .Where(p => p.GetIndexParameters().Length == 0 && p.Name != "EqualityContract")
            .Select(p => p.Name + "=" + Describe(Unwrap(p.GetValue(value))))) + "}",
    };

    private static object? Unwrap(object? v) => v switch
    {
        ReadOnlyMemory<byte> m => m,
        _ => v,
    };
}
