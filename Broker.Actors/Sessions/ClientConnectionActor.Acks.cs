using Akka.Actor;
using Akka.Event;
using Broker.Channel;
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
    private int Qos1AcksCount => _inboundState?.Qos1AwaitingRouting ?? 0;

    private void InboundRouted(long ackId, int deliveries)
    {
        if (IsProbe(ackId))
        {
            ProbeRouted(ackId, deliveries);
            return;
        }

        if (_inboundState?.Routed(ackId, deliveries, Environment.TickCount64, out var completion) == true)
        {
            CompleteQos1(completion);
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

        if (_inboundState?.Stored(ackId, count, outcome == DeliveryOutcome.Refused, Environment.TickCount64, out var completion) == true)
        {
            CompleteQos1(completion);
        }
    }

    /// <summary>
    /// Every matching session has stored the message: now PUBACK may go (the durability promise). A message a full
    /// queue refused is not acknowledged as taken: v5 hears 0x97 (Quota exceeded); 3.1.1 has no refusal code, so the
    /// connection closes unacknowledged and the client sends the message again after reconnecting.
    /// </summary>
    private void CompleteQos1(Qos1Completion completion)
    {
        RouteHeldQos1(completion.RouteNow); // (a refused 3.1.1 client is closed and sends them all again)
        if (completion.Refused)
        {
            PublishRefused(completion.PacketId, qos2: false);
        }

        if (!completion.Acknowledge)
        {
            return;
        }

        Write(new MqttPubAckPacket { PacketId = completion.PacketId, ReasonCode = completion.Reason });
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
        var now = Environment.TickCount64;
        var expired = _inboundState?.RemoveStartedBefore(now - timeoutMs);
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
            var completion = _inbound.TimedOut(packetId, now);
            UpdateReading();
            if (completion.Acknowledge)
            {
                Write(new MqttPubAckPacket { PacketId = packetId, ReasonCode = completion.Reason });
                RouteHeldQos1(completion.RouteNow); // given up: what waited behind it goes (a 3.1.1 client is closed and sends them all again)
            }
        }

        _log.Warning("Client {ClientId} ({Address}): {Count} QoS 1 publish(es) could not be stored for every subscriber within {TimeoutSeconds} s{Consequence}",
            _clientId, _remote, expired.Count, _context.Options.Mqtt.DurableAckTimeout,
            IsV5 ? "; answered with reason 0x80" : "; closing the connection (MQTT 3.1.1 has no failure acknowledgement)");
        if (!IsV5)
        {
            Disconnect(CloseRules.NotStoredInTimeV311);
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
            || _inbound.RemoveUnconfirmed(now, PublisherHoldMs) is not { } unconfirmed)
        {
            return;
        }

        _log.Info("Client {ClientId}: {Count} QoS 1 publish(es) not confirmed by every subscriber's session within {HoldSeconds} s: refused",
            _clientId, unconfirmed.Count, _context.Options.PublisherHoldSeconds);
        foreach (var (packetId, _) in unconfirmed)
        {
            _context.Metrics.DurableAckTimeout();
            CompleteQos1(_inbound.Complete(packetId, refused: true, now));
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
        if (cutoff == 0 || _inboundState?.RouteAgain(cutoff, now) is not { } waiting)
        {
            return;
        }

        _log.Info("Client {ClientId}: routing {Count} QoS 1 publish(es) again that waited for sessions since a node left", _clientId, waiting.Count);
        _routeBatch?.Send(_context.TopicRegion);
        foreach (var (ackId, message) in waiting)
        {
            _context.TopicRegion.Tell(new RoutePublish(message, Self, ackId));
        }
    }

    /// <summary>
    /// Whether a QoS 1 publish routed now may overtake earlier ones on its topic lost with a failed node (see
    /// <see cref="RouteRetry.InTrouble(long, long, bool, long, long)"/>): the channel then holds it behind them.
    /// </summary>
    private bool NodesInTrouble(long nowMs) =>
        RouteRetry.InTrouble(_context.Nodes, AnyNodeUnreachable, (long)UnconfirmedBound.CheckEvery(PublisherHoldMs).TotalMilliseconds, nowMs);

    /// <summary>A QoS 1 publish is acknowledged or given up: route what waited behind it, in order.</summary>
    private void RouteHeldQos1(List<(long AckId, MqttApplicationMessage Message)>? held)
    {
        if (held is null)
        {
            return;
        }

        foreach (var (ackId, message) in held)
        {
            RouteToTopic(new RoutePublish(message, Self, ackId));
        }

        EnsureAckSweep();
    }

    private sealed class AckSweep
    {
        public static readonly AckSweep Instance = new();
    }
}
