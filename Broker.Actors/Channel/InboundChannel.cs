using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Channel;

/// <summary>
/// The rules of what a client sends once connected (MQTT-v5.0 3.3 PUBLISH, 3.6 PUBREL, 3.8 SUBSCRIBE, 3.10
/// UNSUBSCRIBE, 4.3 QoS flows, 4.9 flow control), and the state they need: the client's topic aliases, its QoS 1
/// publishes awaiting PUBACK (their collected acknowledgements in <c>InboundChannel.Qos1.cs</c>), the v5 Receive
/// Maximum quota, the QoS 2 publishes, releases, subscribes and unsubscribes handed to the session and not yet
/// answered, and the gate that holds what follows a SUBSCRIBE. Pure: time comes in as arguments, decisions go out as
/// data; the connection actor authorizes, routes, tells the session, writes and logs.
/// <code>
///   PUBLISH ─► ResolveTopic ─(ACL, in the actor)─► Accept ─► RouteQos0 | RouteQos1 | Qos1Held | Qos1AlreadyInFlight
///                                                            | HandOverQos2 | Violation
///   QoS 2:   HandOverQos2 ─► pending (arrival n) ─► PUBREC sent (HandOverAnswered) / store failed ─► gone
///   PUBREL:  Release ─► pending ─► PUBCOMP sent (ReleaseAnswered) ─► gone
///   SUBSCRIBE ─► pending, gate closed (later packets wait) ─► SUBACK sent (RequestAnswered) ─► gate open
///   session re-attached ─► Unanswered: QoS 2 hand-overs in arrival order, releases, requests, in order
/// </code>
/// "A Server MUST NOT ... [route a QoS 2 message] more than once" ([MQTT-4.3.3-9]: the session answers a known packet
/// id without routing it again), so everything handed over and not answered is handed over again after a re-attach,
/// as the client's own resend with DUP would be.
/// </summary>
public sealed partial class InboundChannel
{
    private readonly bool _v5;
    private readonly int _receiveMaximum;
    private readonly int _topicAliasMaximum;
    private TopicAliases? _aliases; // created on the first alias: most clients never use one
    private HashSet<ushort>? _qos1InFlight; // created on the first QoS 1 publish
    private InboundQuota? _quota; // v5 Receive Maximum over QoS 1 and 2; created on the first QoS > 0 publish
    private Dictionary<ushort, (long Order, MqttApplicationMessage Message)>? _qos2Pending; // created on the first QoS 2 publish
    private long _qos2Arrivals;
    private HashSet<ushort>? _heldQos2; // QoS 2 hand-overs a subscriber's full queue holds
    private List<ushort>? _releases; // PUBREL handed over, PUBCOMP not yet sent, in order
    private List<MqttPacket>? _requests; // SUBSCRIBE and UNSUBSCRIBE handed over and not yet answered, in order

    /// <param name="v5">The client speaks MQTT 5 (3.1.1 has neither aliases nor a Receive Maximum).</param>
    /// <param name="receiveMaximum">The server's Receive Maximum (in its CONNACK).</param>
    /// <param name="topicAliasMaximum">The server's Topic Alias Maximum (in its CONNACK).</param>
    public InboundChannel(bool v5, int receiveMaximum, int topicAliasMaximum)
    {
        _v5 = v5;
        _receiveMaximum = receiveMaximum;
        _topicAliasMaximum = topicAliasMaximum;
    }

    /// <summary>QoS 1 publishes awaiting PUBACK (including the held ones).</summary>
    public int Qos1InFlight => _qos1InFlight?.Count ?? 0;

    /// <summary>A SUBSCRIBE is with the session and not yet answered: the packets that follow it wait.</summary>
    public bool Subscribing { get; private set; }

    /// <summary>A subscriber's full queue holds a QoS 1 or QoS 2 publish of this client (reading waits until none is).</summary>
    public bool AnyHeld => _acks?.HeldCount > 0 || _heldQos2?.Count > 0;

    /// <summary>
    /// The topic of <paramref name="publish"/>: its own, or the one its alias stands for. "A Topic Alias of 0 is not
    /// permitted" [MQTT-3.3.2-8]; a client "MUST NOT send a Topic Alias ... greater than the Topic Alias Maximum"
    /// [MQTT-3.3.2-9] (0x94 Topic Alias invalid; 3.1.1 has no aliases at all); an empty topic with an alias the
    /// client never set is a Protocol Error. A topic name must be valid (no wildcards, not empty, [MQTT-3.3.2-2]):
    /// 0x90 Topic Name invalid. A topic with an alias sets the alias ([MQTT-3.3.2-12]) before the publish is judged
    /// further, as the client expects.
    /// </summary>
    public InboundTopic ResolveTopic(MqttPublishPacket publish)
    {
        var topic = publish.Topic;
        if (publish.TopicAlias != 0)
        {
            var aliases = _aliases ??= new TopicAliases(_topicAliasMaximum, outboundMaximum: 0);
            if (aliases.Resolve(publish.TopicAlias, topic, _v5, out var violation, out var why) is not { } resolved)
            {
                return InboundTopic.Broken(violation, why);
            }

            topic = resolved;
        }

        return MqttTopic.IsValidTopicName(topic)
            ? InboundTopic.Valid(topic)
            : InboundTopic.Broken(MqttReasonCode.TopicNameInvalid, $"invalid topic name '{topic}'");
    }

    /// <summary>
    /// An authorized PUBLISH on <paramref name="topic"/> (from <see cref="ResolveTopic"/>): what to do with it.
    /// "The Client MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH packets for which it has not
    /// received PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128 or greater" [MQTT-3.3.4-9]: the server closes with
    /// 0x93 [MQTT-3.3.4-10]. A QoS 1 resend of a packet id still awaiting PUBACK is not routed twice.
    /// </summary>
    /// <param name="nowUnixMs">Wall-clock time, for the message's expiry (MQTT-v5.0 3.3.2.3.3).</param>
    /// <param name="nowMs">Monotonic time, for how long a QoS 1 publish waits.</param>
    /// <param name="nodesInTrouble">
    /// A member is unreachable or has just left (<see cref="RouteRetry.InTrouble(long, long, bool, long, long)"/>):
    /// a QoS 1 publish then waits behind earlier ones on its topic still on their way. Read only when QoS 1
    /// publishes await PUBACK (<see cref="Qos1AwaitingRouting"/>), so a caller may skip computing it otherwise.
    /// </param>
    public InboundPublishDecision Accept(MqttPublishPacket publish, string topic, string clientId, long nowUnixMs, long nowMs, bool nodesInTrouble)
    {
        var properties = publish.Properties;
        var expiresAt = properties.MessageExpiryInterval is { } seconds ? nowUnixMs + (seconds * 1000L) : 0;
        var message = new MqttApplicationMessage(topic, publish.Payload, publish.QoS, publish.Retain, properties, clientId, expiresAt);
        var packetId = publish.PacketId;
        switch (publish.QoS)
        {
            case MqttQoS.AtMostOnce:
                return new InboundPublishDecision(InboundPublishAction.RouteQos0, message);
            case MqttQoS.AtLeastOnce:
                var inFlight = _qos1InFlight ??= new();
                if (!inFlight.Add(packetId))
                {
                    return new InboundPublishDecision(InboundPublishAction.Qos1AlreadyInFlight, message);
                }

                if (_v5 && (_quota ??= new(_receiveMaximum)).Qos1Exceeds(inFlight.Count))
                {
                    return ReceiveMaximumExceeded;
                }

                if (HoldQos1(packetId, message, nodesInTrouble))
                {
                    return new InboundPublishDecision(InboundPublishAction.Qos1Held, message);
                }

                return new InboundPublishDecision(InboundPublishAction.RouteQos1, message, Acks.Expect((packetId, message), nowMs));
            default:
                if (_v5 && !(_quota ??= new(_receiveMaximum)).AdmitQos2(packetId, Qos1InFlight))
                {
                    return ReceiveMaximumExceeded;
                }

                (_qos2Pending ??= new())[packetId] = (++_qos2Arrivals, message);
                return new InboundPublishDecision(InboundPublishAction.HandOverQos2, message);
        }
    }

    private static InboundPublishDecision ReceiveMaximumExceeded =>
        new(InboundPublishAction.Violation, Violation: MqttReasonCode.ReceiveMaximumExceeded,
            Why: "more unacknowledged QoS>0 PUBLISH than Receive Maximum");

    /// <summary>
    /// The session answered QoS 2 publish <paramref name="packetId"/> with PUBREC (<paramref name="reason"/>): no longer
    /// handed over again. A PUBREC of 0x80 or above ends the exchange, and frees its Receive Maximum slot. True when a
    /// full queue held it (reading may resume).
    /// </summary>
    public bool HandOverAnswered(ushort packetId, MqttReasonCode reason)
    {
        _qos2Pending?.Remove(packetId);
        if ((byte)reason >= 0x80)
        {
            _quota?.Complete(packetId);
        }

        return _heldQos2?.Remove(packetId) == true;
    }

    /// <summary>
    /// QoS 2 publish <paramref name="packetId"/> could not be stored: <paramref name="refused"/> by a subscriber's full
    /// queue (v5: PUBREC 0x97 Quota exceeded), or not in time (v5: PUBREC 0x80). A PUBREC of 0x80 or above ends the
    /// exchange and frees its Receive Maximum slot. 3.1.1 has no failure code: no PUBREC (null), the connection closes
    /// unacknowledged and the client sends the message again. <paramref name="wasHeld"/>: a full queue held it.
    /// </summary>
    public MqttReasonCode? HandOverFailed(ushort packetId, bool refused, out bool wasHeld)
    {
        _qos2Pending?.Remove(packetId);
        _quota?.Complete(packetId);
        wasHeld = _heldQos2?.Remove(packetId) == true;
        return !_v5 ? null : refused ? MqttReasonCode.QuotaExceeded : MqttReasonCode.UnspecifiedError;
    }

    /// <summary>A subscriber's full queue holds QoS 2 publish <paramref name="packetId"/>: true when this is new (reading pauses).</summary>
    public bool Qos2Held(ushort packetId) =>
        _qos2Pending?.ContainsKey(packetId) == true && (_heldQos2 ??= new()).Add(packetId);

    /// <summary>A PUBREL: handed to the session (and again after a re-attach) until PUBCOMP goes out.</summary>
    public void Release(ushort packetId)
    {
        var releases = _releases ??= new();
        if (!releases.Contains(packetId))
        {
            releases.Add(packetId);
        }
    }

    /// <summary>The session sent PUBCOMP for <paramref name="packetId"/>: the QoS 2 exchange is over, its slot free.</summary>
    public void ReleaseAnswered(ushort packetId)
    {
        _releases?.Remove(packetId);
        _quota?.Complete(packetId);
    }

    /// <summary>
    /// A SUBSCRIBE before authorization: "It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription"
    /// [MQTT-3.8.3-4]. Null when it keeps the rules.
    /// </summary>
    public MqttReasonCode? CheckSubscribe(MqttSubscribePacket subscribe)
    {
        if (!_v5)
        {
            return null;
        }

        foreach (var sub in subscribe.Subscriptions)
        {
            if (sub.NoLocal && MqttTopic.TryParseShared(sub.TopicFilter, out _, out _))
            {
                return MqttReasonCode.ProtocolError;
            }
        }

        return null;
    }

    /// <summary>
    /// An authorized SUBSCRIBE goes to the session: it waits for its SUBACK, and so do the packets that follow it (a
    /// PUBLISH to the topic just subscribed to must find the subscription).
    /// </summary>
    public void Subscribe(MqttSubscribePacket subscribe)
    {
        (_requests ??= new()).Add(subscribe);
        Subscribing = true;
    }

    /// <summary>An UNSUBSCRIBE goes to the session: it waits for its UNSUBACK.</summary>
    public void Unsubscribe(MqttUnsubscribePacket unsubscribe) => (_requests ??= new()).Add(unsubscribe);

    /// <summary>
    /// The session answered the SUBSCRIBE or UNSUBSCRIBE <paramref name="packetId"/>. True when that opened the gate: no
    /// SUBSCRIBE is unanswered any more, and the packets that waited may go on.
    /// </summary>
    public bool RequestAnswered(ushort packetId)
    {
        var stillSubscribing = false;
        if (_requests is { } requests)
        {
            for (var i = requests.Count - 1; i >= 0; i--)
            {
                if (RequestId(requests[i]) == packetId)
                {
                    requests.RemoveAt(i);
                }
                else
                {
                    stillSubscribing |= requests[i] is MqttSubscribePacket;
                }
            }
        }

        if (!Subscribing || stillSubscribing)
        {
            return false;
        }

        Subscribing = false;
        return true;
    }

    private static ushort RequestId(MqttPacket request) =>
        request is MqttSubscribePacket s ? s.PacketId : ((MqttUnsubscribePacket)request).PacketId;

    /// <summary>
    /// The session was re-attached (its node left, it recovered elsewhere): what the client sent and the stopped session
    /// never answered, to hand over again: QoS 2 publishes in the order they came (a dictionary's order is not its
    /// insertion order once entries were removed, and a publisher's messages on a topic must stay in order), then the
    /// releases, then the subscribes and unsubscribes, each in order. Each is idempotent at the session. The new session
    /// says again which QoS 2 publishes a full queue holds.
    /// </summary>
    public List<Unanswered> Unanswered()
    {
        _heldQos2?.Clear();
        var resend = new List<Unanswered>();
        if (_qos2Pending is not null)
        {
            foreach (var (packetId, (_, message)) in _qos2Pending.OrderBy(p => p.Value.Order))
            {
                resend.Add(new Unanswered(UnansweredKind.Qos2Publish, packetId, message));
            }
        }

        foreach (var packetId in _releases ?? [])
        {
            resend.Add(new Unanswered(UnansweredKind.Release, packetId));
        }

        foreach (var request in _requests ?? [])
        {
            resend.Add(new Unanswered(UnansweredKind.Request, RequestId(request), Request: request));
        }

        return resend;
    }
}
