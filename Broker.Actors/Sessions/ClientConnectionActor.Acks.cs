using Akka.Actor;
using Akka.Event;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// When a QoS 1 publisher hears PUBACK: once the topic said to how many sessions it routed the message and each of
/// them stored it (the durability promise); with 0x97 when a full queue refused it or a session did not confirm it
/// within Sessions:MaxPublisherHold (<see cref="UnconfirmedBound"/>); with 0x80 after Mqtt:DurableAckTimeout. A 3.1.1
/// publisher has no failure code: its connection is closed unacknowledged instead.
/// </summary>
public sealed partial class ClientConnectionActor
{
    private AckCollector<(ushort PacketId, MqttApplicationMessage Message)>? _qos1AcksState; // created with the first QoS 1 publish

    private AckCollector<(ushort PacketId, MqttApplicationMessage Message)> _qos1Acks => _qos1AcksState ??= new();

    private int Qos1AcksCount => _qos1AcksState?.Count ?? 0;
    private InboundRouteOrder<(ushort PacketId, MqttApplicationMessage Message)>? _qos1Order; // created when a topic is first blocked

    private void InboundRouted(long ackId, int deliveries)
    {
        if (IsProbe(ackId))
        {
            ProbeRouted(ackId, deliveries);
            return;
        }

        if (_qos1Acks.OnRouted(ackId, deliveries, out var state))
        {
            CompleteQos1(state.PacketId, _qos1Acks.CompletedRefused);
        }
    }

    private void InboundStored(long ackId, int count, DeliveryOutcome outcome)
    {
        if (IsProbe(ackId))
        {
            ProbeDelivered(ackId);
            return;
        }

        if (outcome == DeliveryOutcome.Held)
        {
            PublishHeld(ackId);
            return;
        }

        if (_qos1Acks.OnStored(ackId, out var state, count, outcome == DeliveryOutcome.Refused))
        {
            CompleteQos1(state.PacketId, _qos1Acks.CompletedRefused);
        }
    }

    /// <summary>
    /// Every matching session has stored the message: now PUBACK may go (the durability promise). A message a full
    /// queue refused is not acknowledged as taken: v5 hears 0x97 (Quota exceeded); 3.1.1 has no refusal code, so the
    /// connection closes unacknowledged and the client sends the message again after reconnecting.
    /// </summary>
    private void CompleteQos1(ushort packetId, bool refused = false)
    {
        _inboundQos1InFlight?.Remove(packetId);
        if (!refused || IsV5)
        {
            RouteHeldQos1(packetId); // (a refused 3.1.1 client is closed and sends them all again)
        }

        if (refused)
        {
            PublishRefused(packetId, qos2: false);
            if (!IsV5)
            {
                return;
            }
        }

        Write(new MqttPubAckPacket { PacketId = packetId, ReasonCode = refused ? MqttReasonCode.QuotaExceeded : MqttReasonCode.Success });
        if (_readingPaused)
        {
            UpdateReading();
        }
    }

    private void EnsureAckSweep()
    {
        if (!Timers.IsTimerActive(AckSweep.Instance))
        {
            Timers.StartPeriodicTimer(AckSweep.Instance, AckSweep.Instance, UnconfirmedBound.CheckEvery(PublisherHoldMs));
        }
    }

    private long PublisherHoldMs => (long)(_context.Options.PublisherHoldSeconds * 1000);

    /// <summary>
    /// QoS 1 publishes whose storage did not complete in time (storage down, a node lost): the publisher must not
    /// wait forever, and must not be told the message is safe. v5 gets PUBACK 0x80; 3.1.1 has no failure code, so
    /// the connection is closed and the client resends on reconnect.
    /// </summary>
    private void SweepAcks()
    {
        var timeoutMs = _context.Options.Mqtt.DurableAckTimeout * 1000L;
        RouteAgainAfterNodeLeft();
        RefuseUnconfirmed();
        var expired = _qos1AcksState?.RemoveStartedBefore(Environment.TickCount64 - timeoutMs);
        SweepProbes();
        if (Qos1AcksCount == 0 && Qos0ProbesCount == 0)
        {
            Timers.Cancel(AckSweep.Instance);
        }

        if (expired is null)
        {
            return;
        }

        foreach (var (packetId, _) in expired)
        {
            _context.Metrics.DurableAckTimeout();
            _inboundQos1InFlight?.Remove(packetId);
            UpdateReading();
            if (IsV5)
            {
                Write(new MqttPubAckPacket { PacketId = packetId, ReasonCode = MqttReasonCode.UnspecifiedError });
                RouteHeldQos1(packetId); // given up: what waited behind it goes (a 3.1.1 client is closed and sends them all again)
            }
        }

        _log.Warning("Client {ClientId} ({Address}): {Count} QoS 1 publish(es) could not be stored for every subscriber within {TimeoutSeconds} s{Consequence}",
            _clientId, _remote, expired.Count, _context.Options.Mqtt.DurableAckTimeout,
            IsV5 ? "; answered with reason 0x80" : "; closing the connection (MQTT 3.1.1 has no failure acknowledgement)");
        if (!IsV5)
        {
            Disconnect(MqttReasonCode.UnspecifiedError);
        }
    }

    /// <summary>
    /// QoS 1 publishes that one session has not confirmed within Sessions:MaxPublisherHold (see
    /// <see cref="UnconfirmedBound"/>): refused like a full queue's, not acknowledged (v5 0x97; 3.1.1 closed under
    /// "backpressure"), and counted with the publishes not stored in time.
    /// </summary>
    private void RefuseUnconfirmed()
    {
        var now = Environment.TickCount64;
        var nodes = _context.Nodes;
        if (Qos1AcksCount == 0
            || !UnconfirmedBound.Applies(IsV5, _context.Options.Sessions.Policy, AnyNodeUnreachable,
                nodes.LastLeftAtMs, (long)nodes.ShardsMovedAfter.TotalMilliseconds, PublisherHoldMs, now)
            || _qos1Acks.RemoveUnconfirmed(now, PublisherHoldMs) is not { } unconfirmed)
        {
            return;
        }

        _log.Info("Client {ClientId}: {Count} QoS 1 publish(es) not confirmed by every subscriber's session within {HoldSeconds} s: refused",
            _clientId, unconfirmed.Count, _context.Options.PublisherHoldSeconds);
        foreach (var (packetId, _) in unconfirmed)
        {
            _context.Metrics.DurableAckTimeout();
            CompleteQos1(packetId, refused: true);
            if (!IsV5)
            {
                return; // closed: the client sends them all again
            }
        }
    }

    private bool AnyNodeUnreachable => _context.Nodes.AnyUnreachable;

    /// <summary>QoS 1 publishes that may have been lost with a node that left: routed again (see <see cref="RouteRetry"/>).</summary>
    private void RouteAgainAfterNodeLeft()
    {
        var nodes = _context.Nodes;
        var now = Environment.TickCount64;
        var cutoff = RouteRetry.Cutoff(nodes.LastLeftAtMs, (long)nodes.ShardsMovedAfter.TotalMilliseconds, now, ref Occasional.ReroutedForLeftAtMs);
        if (cutoff == 0 || _qos1AcksState?.RemoveStartedBefore(cutoff) is not { } waiting)
        {
            return;
        }

        _log.Info("Client {ClientId}: routing {Count} QoS 1 publish(es) again that waited for sessions since a node left", _clientId, waiting.Count);
        _routeBatch?.Send(_context.TopicRegion);
        foreach (var (packetId, message) in waiting)
        {
            _context.TopicRegion.Tell(new RoutePublish(message, Self, _qos1Acks.Expect((packetId, message), now)));
        }
    }

    /// <summary>
    /// Whether a QoS 1 publish waits for earlier ones on its topic that may have been lost with a failed node: while a
    /// member is unreachable or one has just left, those still on their way block the topic (see
    /// <see cref="InboundRouteOrder{T}"/>; QoS 1 publishes are routed again by <see cref="RouteAgainAfterNodeLeft"/>).
    /// </summary>
    private bool HoldQos1(ushort packetId, MqttApplicationMessage message)
    {
        var topic = message.Topic;
        if (_qos1Acks.Count > 0
            && RouteRetry.InTrouble(_context.Nodes, AnyNodeUnreachable, (long)UnconfirmedBound.CheckEvery(PublisherHoldMs).TotalMilliseconds,
                Environment.TickCount64))
        {
            foreach (var (earlierId, earlier) in _qos1Acks.States)
            {
                if (string.Equals(earlier.Topic, topic, StringComparison.Ordinal))
                {
                    (_qos1Order ??= new()).Block(earlierId, topic);
                }
            }
        }

        return _qos1Order?.TryHold((packetId, message), topic) == true;
    }

    /// <summary><paramref name="packetId"/> is acknowledged or given up: route what waited behind it, in order, once nothing blocks its topic.</summary>
    private void RouteHeldQos1(ushort packetId)
    {
        if (_qos1Order?.Done(packetId) is not { } held)
        {
            return;
        }

        foreach (var (id, message) in held)
        {
            RouteToTopic(new RoutePublish(message, Self, _qos1Acks.Expect((id, message), Environment.TickCount64)));
        }

        EnsureAckSweep();
    }

    private sealed class AckSweep
    {
        public static readonly AckSweep Instance = new();
    }
}
