using Akka.Event;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Transport;

namespace Broker.Sessions;

/// <summary>PUBLISH in both directions, topic aliases, SUBSCRIBE/UNSUBSCRIBE hand-off (MQTT-v5.0 3.3, 3.8, 3.10).</summary>
public sealed partial class ClientConnectionActor
{
    private RouteBatcher? _routeBatch; // created with the first publish routed: many connections only subscribe

    private RouteBatcher _routes => _routeBatch ??= new();
    // created on first use: most connections never use aliases
    private TopicAliases? _aliases { get => _occasional?.Aliases; set { if (_occasional is not null || value is not null) Occasional.Aliases = value; } }
    private HashSet<ushort>? _inboundQos1InFlight; // created on the first QoS 1 publish
    private InboundQuota? _inboundQuota; // v5 Receive Maximum over QoS 1 and 2; created on the first QoS > 0 publish

    /// <summary>
    /// QoS 2 publishes handed to the session and not yet answered with PUBREC. If the session's node dies, the hand-over
    /// may be lost with it; once the session is re-attached they are handed over again, as the client's own resend
    /// with DUP would be (the session answers a known packet id without routing it twice, [MQTT-4.3.3-9]), and in the
    /// order they came (each with its arrival number: a dictionary's enumeration order is not its insertion order once
    /// entries were removed, and a publisher's messages on a topic must stay in order).
    /// </summary>
    private Dictionary<ushort, (long Order, InboundQos2Publish HandOver)>? _inboundQos2Pending; // created on the first QoS 2 publish
    private long _inboundQos2Arrivals { get => _occasional?.InboundQos2Arrivals ?? 0; set { if (_occasional is not null || value != 0) Occasional.InboundQos2Arrivals = value; } }

    /// <summary>
    /// PUBREL ids handed to the session and not yet answered with PUBCOMP: a release that reached a session as it
    /// stopped (its shard handed off) is lost with it, and the client waits for PUBCOMP; it is handed over again after
    /// the re-attach (the session answers a release it has done already with PUBCOMP too).
    /// </summary>
    private HashSet<ushort>? _releasesPending { get => _occasional?.ReleasesPending; set { if (_occasional is not null || value is not null) Occasional.ReleasesPending = value; } }

    /// <summary>SUBSCRIBE and UNSUBSCRIBE handed to the session and not yet answered, in order; handed over again after a re-attach, like the releases.</summary>
    private List<(ushort PacketId, object Request)>? _requestsPending;

    /// <summary>A SUBSCRIBE is with the session and not yet answered: the packets that follow it wait (see Connected).</summary>
    private bool _subscribing;
    private uint _grantedExpiry;
    private uint _clientMaxPacketSize = uint.MaxValue;
    private ushort _clientTopicAliasMaximum;

    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is ActorTimers.Tick tick)
        {
            if (_timers.Accept(tick) is not { } due)
            {
                return true; // cancelled or replaced meanwhile
            }

            message = due;
        }
        else if (message is MqttPacket or MqttDecodeError)
        {
            _clock.LastPacketTicks = Environment.TickCount64;
            if (Interlocked.Decrement(ref _codec.PendingPackets) == MqttCodecState.BacklogLow)
            {
                ResumeAfterBacklog();
            }
        }

        return base.AroundReceive(receive, message);
    }

    private void HandlePublish(MqttPublishPacket publish)
    {
        ChargePublishRate();
        var topic = publish.Topic;
        if (publish.TopicAlias != 0)
        {
            if (Aliases.Resolve(publish.TopicAlias, topic, IsV5, out var violation, out var why) is not { } resolved)
            {
                ProtocolViolation(violation, why);
                return;
            }

            topic = resolved;
        }

        if (!MqttTopic.IsValidTopicName(topic))
        {
            ProtocolViolation(MqttReasonCode.TopicNameInvalid, $"invalid topic name '{topic}'");
            return;
        }

        if (!AdmitPublish(publish, topic))
        {
            return;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var properties = publish.Properties;
        var expiresAt = properties.MessageExpiryInterval is { } seconds ? now + (seconds * 1000L) : 0;
        var message = new MqttApplicationMessage(topic, publish.Payload, publish.QoS, publish.Retain, properties, _clientId, expiresAt);
        _context.Metrics.PublishReceived(publish.QoS, publish.Payload.Length);

        switch (publish.QoS)
        {
            case MqttQoS.AtMostOnce:
                RouteQos0(message);
                break;
            case MqttQoS.AtLeastOnce:
                if (!(_inboundQos1InFlight ??= new()).Add(publish.PacketId))
                {
                    // A resend while the first copy is still being stored: PUBACK follows once it is.
                    return;
                }

                if (IsV5 && (_inboundQuota ??= new(_context.Options.Mqtt.ReceiveMaximum)).Qos1Exceeds(_inboundQos1InFlight.Count))
                {
                    ProtocolViolation(MqttReasonCode.ReceiveMaximumExceeded, "more unacknowledged QoS>0 PUBLISH than Receive Maximum");
                    return;
                }

                if (HoldQos1(publish.PacketId, message))
                {
                    UpdateReading();
                    break; // behind earlier ones on its topic that may have been lost with a failed node
                }

                var ackId = _qos1Acks.Expect((publish.PacketId, message), Environment.TickCount64);
                EnsureAckSweep();
                UpdateReading();
                RouteToTopic(new RoutePublish(message, Self, ackId));
                break;
            default:
                if (IsV5 && !(_inboundQuota ??= new(_context.Options.Mqtt.ReceiveMaximum)).AdmitQos2(publish.PacketId, _inboundQos1InFlight?.Count ?? 0))
                {
                    ProtocolViolation(MqttReasonCode.ReceiveMaximumExceeded, "more unacknowledged QoS>0 PUBLISH than Receive Maximum");
                    return;
                }

                var handOver = new InboundQos2Publish(Self, message, publish.PacketId);
                (_inboundQos2Pending ??= new())[publish.PacketId] = (++_inboundQos2Arrivals, handOver);
                _session!.Tell(handOver);
                break;
        }
    }

    /// <summary>QoS 0 and 1 publishes go to their topic gathered (see <see cref="RouteBatcher"/>) until the next flush.</summary>
    private void RouteToTopic(RoutePublish publish)
    {
        if (!_context.Links.EveryMemberReadsBatches)
        {
            _routeBatch?.Send(_context.TopicRegion);
            _context.TopicRegion.Tell(publish, ActorRefs.NoSender); // a member of an older version is in the cluster
            return;
        }

        _routes.Add(publish, _context.TopicRegion);
        if (!_routes.IsEmpty)
        {
            ScheduleFlush();
        }
    }

    private void HandleSendPublish(SendPublish send)
    {
        var queued = send.Message;
        AnswerProbe(send);
        if (Channel.OutboundPublish.DropsForSlowConsumer(queued.QoS, _channel.IsWritable))
        {
            // Slow or dead consumer: at most once allows dropping, and memory must stay bounded (DESIGN promise 6).
            // A probe is answered all the same: a stuck subscriber must not stall a publisher that serves others.
            _context.Metrics.DroppedSlowConsumerAdd();
            return;
        }

        var message = queued.Message;
        if (!MayRead(message.Topic))
        {
            // The subscription was allowed, this topic is not (a denied subtree under a wildcard): never sent.
            _context.Metrics.AclDenyDelivery();
            AckUnsent(send);
            return;
        }

        // The rules (remaining expiry, aliases, the client's Maximum Packet Size) are OutboundPublish's; the clock is read
        // only for a message that expires.
        var now = message.ExpiresAtUnixMs != 0 ? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() : 0;
        var packet = Channel.OutboundPublish.Packet(queued, send.PacketId, send.Dup, IsV5, now);
        if (Channel.OutboundPublish.Prepare(ref packet, _version, _clientMaxPacketSize, _clientTopicAliasMaximum > 0 ? Aliases : null)
            == Channel.OutboundVerdict.DropTooLarge)
        {
            // [MQTT-3.1.2-25] never send more than the client accepts: discard as if it had been delivered.
            _log.Warning("Client {ClientId}: dropped a {PayloadBytes}-byte message on {Topic} above its Maximum Packet Size {MaximumPacketSize}",
                _clientId, message.Payload.Length, message.Topic, _clientMaxPacketSize);
            AckUnsent(send);
            return;
        }

        _context.Metrics.PublishSent(queued.QoS, message.Payload.Length);
        Write(packet);
    }

    /// <summary>Completes a QoS 1/2 message that will not be sent to this client, so it does not hold the window.</summary>
    private void AckUnsent(SendPublish send)
    {
        if (send.PacketId != 0)
        {
            var (ack, reason) = Channel.OutboundPublish.CompletionOfUnsent(send.Message.QoS);
            _session?.Tell(new OutboundAck(Self, ack, send.PacketId, reason));
        }
    }

    private TopicAliases Aliases => _aliases ??= new TopicAliases(_context.Options.Mqtt.TopicAliasMaximum, _clientTopicAliasMaximum);

    private void HandleSubscribe(MqttSubscribePacket subscribe)
    {
        foreach (var sub in subscribe.Subscriptions)
        {
            if (IsV5 && sub.NoLocal && MqttTopic.TryParseShared(sub.TopicFilter, out _, out _))
            {
                // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
                ProtocolViolation(MqttReasonCode.ProtocolError, "No Local set on a shared subscription");
                return;
            }
        }

        if (AdmitSubscribe(subscribe) is { } admitted)
        {
            var request = new SessionSubscribe(Self, admitted);
            (_requestsPending ??= new()).Add((admitted.PacketId, request));
            _session!.Tell(request);
            _subscribing = true;
        }
    }

    private void HandleUnsubscribe(MqttUnsubscribePacket unsubscribe)
    {
        if (_httpGrantedFilters is not null)
        {
            foreach (var filter in unsubscribe.TopicFilters)
            {
                _grantsVersion += _httpGrantedFilters.Remove(InnerFilter(filter)) ? 1 : 0;
            }
        }

        var request = new SessionUnsubscribe(Self, unsubscribe);
        (_requestsPending ??= new()).Add((unsubscribe.PacketId, request));
        _session!.Tell(request);
    }

    private void RequestAnswered(ushort packetId)
    {
        _requestsPending?.RemoveAll(r => r.PacketId == packetId);
        if (_subscribing && _requestsPending?.Exists(r => r.Request is SessionSubscribe) != true)
        {
            _subscribing = false;
            if (!_aclPending && _session is not null)
            {
                Stash.UnstashAll(); // what came after the SUBSCRIBE (while re-attaching, SessionAttached unstashes it)
            }
        }
    }

    /// <summary>
    /// After a re-attach: hand the session again what the client sent and the stopped session never answered: QoS 2
    /// publishes, releases, subscribes and unsubscribes (each is idempotent at the session).
    /// </summary>
    private void ResendUnanswered()
    {
        _heldQos2?.Clear(); // the session they go to says again which of them a full queue holds
        if (_inboundQos2Pending is not null)
        {
            foreach (var (_, handOver) in _inboundQos2Pending.Values.OrderBy(p => p.Order))
            {
                _session!.Tell(handOver);
            }
        }

        foreach (var packetId in _releasesPending ?? [])
        {
            _session!.Tell(new InboundRelease(Self, packetId));
        }

        foreach (var (_, request) in _requestsPending ?? [])
        {
            _session!.Tell(request);
        }
    }
}
