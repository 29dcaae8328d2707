using Akka.Event;
using Akka.Actor;
using Broker.Channel;
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
    private InboundChannel? _inboundState; // the rules of what the client sends; created with the first packet that needs it

    private InboundChannel _inbound => _inboundState ??= new(IsV5, _context.Options.Mqtt.ReceiveMaximum, _context.Options.Mqtt.TopicAliasMaximum);

    /// <summary>A SUBSCRIBE is with the session and not yet answered: the packets that follow it wait (see Connected).</summary>
    private bool _subscribing => _inboundState?.Subscribing == true;
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
        var inbound = _inbound;
        var resolved = inbound.ResolveTopic(publish);
        if (resolved.IsViolation)
        {
            ProtocolViolation(resolved.Violation, resolved.Why!);
            return;
        }

        var topic = resolved.Topic!;
        if (!AdmitPublish(publish, topic))
        {
            return;
        }

        _context.Metrics.PublishReceived(publish.QoS, publish.Payload.Length);
        var nowMs = Environment.TickCount64;
        var decision = inbound.Accept(publish, topic, _clientId, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), nowMs,
            nodesInTrouble: publish.QoS == MqttQoS.AtLeastOnce && inbound.Qos1AwaitingRouting > 0 && NodesInTrouble(nowMs));
        switch (decision.Action)
        {
            case InboundPublishAction.RouteQos0:
                RouteQos0(decision.Message!);
                break;
            case InboundPublishAction.RouteQos1:
                EnsureAckSweep();
                UpdateReading();
                RouteToTopic(new RoutePublish(decision.Message!, Self, decision.AckId));
                break;
            case InboundPublishAction.Qos1Held:
                UpdateReading(); // behind earlier ones on its topic that may have been lost with a failed node
                break;
            case InboundPublishAction.HandOverQos2:
                _session!.Tell(new InboundQos2Publish(Self, decision.Message!, publish.PacketId));
                break;
            case InboundPublishAction.Violation:
                ProtocolViolation(decision.Violation, decision.Why!);
                break;
            default:
                break; // a QoS 1 resend while the first copy is still being stored: PUBACK follows once it is
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

    private TopicAliases Aliases => _aliases ??= new TopicAliases(inboundMaximum: 0, _clientTopicAliasMaximum); // outbound only: InboundChannel holds the client's

    private void HandleSubscribe(MqttSubscribePacket subscribe)
    {
        if (_inbound.CheckSubscribe(subscribe) is { } violation)
        {
            ProtocolViolation(violation, "No Local set on a shared subscription");
            return;
        }

        if (AdmitSubscribe(subscribe) is { } admitted)
        {
            _inbound.Subscribe(admitted);
            _session!.Tell(new SessionSubscribe(Self, admitted));
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

        _inbound.Unsubscribe(unsubscribe);
        _session!.Tell(new SessionUnsubscribe(Self, unsubscribe));
    }

    private void RequestAnswered(ushort packetId)
    {
        if (_inboundState?.RequestAnswered(packetId) == true && !_aclPending && _session is not null)
        {
            Stash.UnstashAll(); // what came after the SUBSCRIBE (while re-attaching, SessionAttached unstashes it)
        }
    }

    /// <summary>
    /// After a re-attach: hand the session again what the client sent and the stopped session never answered: QoS 2
    /// publishes, releases, subscribes and unsubscribes (each is idempotent at the session).
    /// </summary>
    private void ResendUnanswered()
    {
        if (_inboundState is null)
        {
            return;
        }

        foreach (var unanswered in _inboundState.Unanswered())
        {
            _session!.Tell(unanswered.Kind switch
            {
                UnansweredKind.Qos2Publish => new InboundQos2Publish(Self, unanswered.Message!, unanswered.PacketId),
                UnansweredKind.Release => new InboundRelease(Self, unanswered.PacketId),
                _ => unanswered.Request is MqttSubscribePacket subscribe
                    ? new SessionSubscribe(Self, subscribe)
                    : new SessionUnsubscribe(Self, (MqttUnsubscribePacket)unanswered.Request!),
            });
        }
    }
}
