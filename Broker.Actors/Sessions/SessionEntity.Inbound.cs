using Akka.Event;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Inbound QoS 2 (MQTT-4.3.3): the rules are <see cref="InboundQos2Rules"/>' (on <see cref="InboundQos2Flow"/>'s state);
/// this part journals, routes and answers as they decide.
/// </summary>
public sealed partial class SessionEntity
{
    private AckCollector<ushort>? _inboundAckState; // created with the first inbound QoS 2 message routed

    private AckCollector<ushort> _inboundAcks => _inboundAckState ??= new();

    private int InboundRoutingCount => _inboundAckState?.Count ?? 0;
    private InboundQos2Flow? _inFlow; // created on the first inbound QoS 2 message

    private InboundQos2Flow Inbound => _inFlow ??= new();

    private void HandleInboundQos2(InboundQos2Publish publish)
    {
        if (!publish.Connection.Equals(_connection))
        {
            return;
        }

        var packetId = publish.PacketId;
        var decision = InboundQos2Rules.Publish(Inbound, packetId, publish.Message, _persistent, NewOriginStream);
        var pending = decision.Pending;
        switch (decision.Action)
        {
            case InboundQos2Flow.PublishAction.PubRecAgain:
                _connection.Tell(new SendPacket(new MqttPubRecPacket { PacketId = packetId }));
                break;
            case InboundQos2Flow.PublishAction.AlreadyRouting:
                break; // PUBREC follows once the first copy is stored
            case InboundQos2Flow.PublishAction.RouteAgain:
                // Accepted before, not yet stored everywhere: the same message, the same origin; later ones wait for it.
                Order.Block(packetId, pending!.Message.Topic);
                RouteInbound(pending!);
                break;
            case InboundQos2Flow.PublishAction.Route:
                RouteInbound(packetId, publish.Message, null);
                break;
            case InboundQos2Flow.PublishAction.JournalPending:
                Store(pending!, () =>
                {
                    if (Inbound.StillPending(pending!) && !HoldBehindEarlier(pending!))
                    {
                        RouteInbound(pending!);
                    }
                });
                break;
        }
    }

    private static long NewOriginStream()
    {
        long stream;
        do
        {
            stream = Random.Shared.NextInt64();
        }
        while (stream == 0);

        return stream;
    }

    /// <summary>After recovery: route again, under their origins, the messages accepted and not yet stored everywhere.</summary>
    private void RouteRecoveredInbound()
    {
        if (_inFlow is not { PendingCount: > 0 } flow)
        {
            return;
        }

        _log.Info("Session {ClientId}: routing {Count} QoS 2 message(s) again that were accepted but not yet stored for every subscriber",
            _clientId, flow.PendingCount);
        _order?.Clear();
        foreach (var p in flow.RouteRecovered())
        {
            Order.Block(p.PacketId, p.Message.Topic);
            RouteInbound(p);
        }
    }

    private void RouteInbound(InboundQos2Pending pending) => RouteInbound(pending.PacketId, pending.Message, Inbound.OriginFor(pending));

    private void RouteInbound(ushort packetId, MqttApplicationMessage message, MessageOrigin? origin)
    {
        var ackId = _inboundAcks.Expect(packetId, Environment.TickCount64);
        _context.TopicRegion.Tell(new RoutePublish(message, Self, ackId, origin));
        if (!Timers.IsTimerActive(InboundSweep.Instance))
        {
            Timers.StartPeriodicTimer(InboundSweep.Instance, InboundSweep.Instance,
                UnconfirmedBound.CheckEvery((long)(_context.Options.PublisherHoldSeconds * 1000)));
        }
    }

    private void InboundRouted(long ackId, int deliveries) => CarryOut(InboundQos2Rules.Routed(_inboundAcks, ackId, deliveries));

    private void InboundStored(long ackId, int count, DeliveryOutcome outcome = DeliveryOutcome.Stored) =>
        CarryOut(InboundQos2Rules.Stored(_inboundAcks, ackId, count, outcome, Environment.TickCount64));

    private void CarryOut(InboundStorageDecision decision)
    {
        switch (decision.Action)
        {
            case InboundStorageAction.Held:
                // A subscriber's full queue holds it: PUBREC waits, and the connection stops reading meanwhile, as for QoS 1.
                _connection?.Tell(new InboundQos2Held(decision.PacketId));
                break;
            case InboundStorageAction.Refused:
                InboundFailed(decision.PacketId, refused: true);
                break;
            case InboundStorageAction.Complete:
                InboundComplete(decision.PacketId);
                break;
        }
    }

    /// <summary>Every subscriber stored it: PUBREC at once; Stored follows in the journal (see <see cref="InboundQos2Flow"/>).</summary>
    private void InboundComplete(ushort packetId)
    {
        var decision = InboundQos2Rules.Complete(Inbound, packetId);
        if (!decision.Acknowledge)
        {
            RouteHeld(packetId);
            return; // routed again after a recovery, and released meanwhile: done
        }

        var seq = decision.Seq;
        Store(new InboundQos2Stored(packetId), () => _inFlow?.Settled(seq));
        _connection?.Tell(new SendPacket(new MqttPubRecPacket { PacketId = packetId, ReasonCode = decision.PubRecReason }));
        RouteHeld(packetId);
    }

    /// <summary>
    /// Inbound QoS 2 messages whose storage did not complete in time are refused, never acknowledged. A v5 client
    /// hears PUBREC 0x80, which ends the flow and frees the id, so a pending message is given up (journaled first: a
    /// recovery must not route it again under an id the client may reuse); a 3.1.1 client is disconnected and
    /// resends it, and it is routed again under its origin.
    /// </summary>
    private void SweepInbound()
    {
        RouteAgainAfterNodeLeft();
        RefuseUnconfirmed();
        var expired = _inboundAckState?.RemoveStartedBefore(
            InboundQos2Rules.ExpiredBefore(Environment.TickCount64, _context.Options.Mqtt.DurableAckTimeout));
        if (!InboundQos2Rules.KeepsSweeping(InboundRoutingCount))
        {
            Timers.Cancel(InboundSweep.Instance);
        }

        foreach (var packetId in expired ?? [])
        {
            _context.Metrics.DurableAckTimeout();
            InboundFailed(packetId, refused: false);
        }
    }

    /// <summary>
    /// Inbound QoS 2 messages that one subscriber's session has not confirmed within Sessions:MaxPublisherHold (see
    /// <see cref="UnconfirmedBound"/>): refused like a full queue's (v5 PUBREC 0x97; 3.1.1 closed under "backpressure").
    /// </summary>
    private void RefuseUnconfirmed()
    {
        var now = Environment.TickCount64;
        var nodes = _context.Nodes;
        var holdMs = (long)(_context.Options.PublisherHoldSeconds * 1000);
        if (InboundRoutingCount == 0
            || !UnconfirmedBound.Applies(_version == MqttProtocolVersion.V500, _context.Options.Sessions.Policy,
                AnyNodeUnreachable, nodes.LastLeftAtMs,
                (long)nodes.ShardsMovedAfter.TotalMilliseconds, holdMs, now)
            || _inboundAcks.RemoveUnconfirmed(now, holdMs) is not { } unconfirmed)
        {
            return;
        }

        _log.Info("Session {ClientId}: {Count} QoS 2 publish(es) not confirmed by every subscriber's session within {HoldSeconds} s: refused",
            _clientId, unconfirmed.Count, _context.Options.PublisherHoldSeconds);
        foreach (var packetId in unconfirmed)
        {
            _context.Metrics.DurableAckTimeout();
            InboundFailed(packetId, refused: true);
        }
    }

    /// <summary>
    /// An inbound QoS 2 message not stored for every subscriber in time, or <paramref name="refused"/> by a full queue:
    /// never acknowledged as taken (v5 PUBREC 0x80 / 0x97; 3.1.1 disconnected, see <see cref="SweepInbound"/>).
    /// </summary>
    private void InboundFailed(ushort packetId, bool refused)
    {
        var decision = InboundQos2Rules.Failed(Inbound, packetId, InboundQos2Rules.CanRefuse(_connection is not null, _version));
        var pending = decision.Pending;
        switch (decision.Action)
        {
            case InboundFailAction.AlreadyReleased:
                RouteHeldIf(decision.RouteHeld, packetId);
                return; // the client completed it already
            case InboundFailAction.GiveUp:
                Store(new InboundQos2Released(packetId), () =>
                {
                    _inFlow?.Settled(pending!.Seq);
                    _inFlow?.StopRouting(packetId);
                    _connection?.Tell(new InboundStoreFailed(packetId, refused));
                });
                RouteHeldIf(decision.RouteHeld, packetId); // given up: it will not be routed again
                return;
        }

        RouteHeldIf(decision.RouteHeld, packetId);

        // Still pending (3.1.1: the client is disconnected and sends it again): if it blocks, it keeps blocking.
        _connection?.Tell(new InboundStoreFailed(packetId, refused));
    }

    private void RouteHeldIf(bool routeHeld, ushort packetId)
    {
        if (routeHeld)
        {
            RouteHeld(packetId);
        }
    }

    private sealed class InboundSweep
    {
        public static readonly InboundSweep Instance = new();
    }

    private void HandleInboundRelease(InboundRelease release)
    {
        if (!release.Connection.Equals(_connection))
        {
            return;
        }

        var packetId = release.PacketId;
        var decision = InboundQos2Rules.Release(_inFlow, packetId, _version);
        var reason = decision.PubCompReason;
        var seq = decision.Seq; // captured with the others: one closure object, as before
        switch (decision.Action)
        {
            case InboundQos2Flow.ReleaseAction.NotFound:
                _connection.Tell(new SendPacket(new MqttPubCompPacket { PacketId = packetId, ReasonCode = reason }));
                break;
            case InboundQos2Flow.ReleaseAction.Release:
                Store(new InboundQos2Released(packetId), () =>
                    _connection?.Tell(new SendPacket(new MqttPubCompPacket { PacketId = packetId, ReasonCode = reason })));
                break;
            case InboundQos2Flow.ReleaseAction.ReleasePending:
                Store(new InboundQos2Released(packetId), () =>
                {
                    _inFlow?.Settled(seq);
                    _connection?.Tell(new SendPacket(new MqttPubCompPacket { PacketId = packetId, ReasonCode = reason }));
                });
                RouteHeldIf(decision.RouteHeld, packetId); // not on its way (else it is done once its routing ends)

                break;
        }
    }
}
