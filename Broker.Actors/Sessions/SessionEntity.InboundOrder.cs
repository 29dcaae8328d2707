using Akka.Event;

namespace Broker.Sessions;

/// <summary>
/// Inbound QoS 2 messages routed again, and their order: a routing lost with a failed node is repeated when the client
/// comes back or once the node's shards have moved (<see cref="RouteRetry"/>), and what the session accepts meanwhile
/// on the same topic waits for it (<see cref="InboundRouteOrder{T}"/>, [MQTT-4.6.0-6]).
/// </summary>
public sealed partial class SessionEntity
{
    private InboundRouteOrder<InboundQos2Pending>? _order; // created when a topic is first blocked

    private InboundRouteOrder<InboundQos2Pending> Order => _order ??= new();

    /// <summary>
    /// Whether a message just journaled waits for earlier ones on its topic (see <see cref="InboundRouteOrder{T}"/>): those
    /// routed again, and, while a node is unreachable or has just left, those still on their way (their routing may
    /// have gone to the failed node and be routed again once its shards have moved, when this one must not have gone
    /// before them).
    /// </summary>
    private bool HoldBehindEarlier(InboundQos2Pending pending)
    {
        if (InboundRoutingCount > 0 && RouteRetry.InTrouble(_context.Nodes, AnyNodeUnreachable, InboundSweepMs, Environment.TickCount64))
        {
            var topic = pending.Message.Topic;
            foreach (var packetId in _inboundAcks.States)
            {
                if (Inbound.TryGetPending(packetId, out var earlier) && string.Equals(earlier.Message.Topic, topic, StringComparison.Ordinal))
                {
                    Order.Block(packetId, topic);
                }
            }
        }

        return _order?.TryHold(pending, pending.Message.Topic) == true;
    }

    private long InboundSweepMs => (long)UnconfirmedBound.CheckEvery((long)(_context.Options.PublisherHoldSeconds * 1000)).TotalMilliseconds;

    private bool AnyNodeUnreachable => _context.Nodes.AnyUnreachable;

    /// <summary><paramref name="packetId"/> no longer blocks: route what was held behind it, in order, once nothing does (see <see cref="InboundRouteOrder{T}"/>).</summary>
    private void RouteHeld(ushort packetId)
    {
        if (_order?.Done(packetId) is not { } held)
        {
            return;
        }

        foreach (var pending in held)
        {
            if (Inbound.StillPending(pending))
            {
                RouteInbound(pending);
            }
        }
    }

    /// <summary>
    /// A client came back on a new connection: the QoS 2 messages of a persistent session still on their way to their
    /// subscribers are routed again now, under their origins and in order (subscribers that took them only confirm).
    /// Their first routing may have been lost with a node that failed together with the old connection, and whatever
    /// the client publishes next must not overtake them (per-publisher order), which a route retry on a timer would
    /// let happen.
    /// </summary>
    private void RouteInboundAgainOnAttach()
    {
        if (!_persistent || _inFlow is not { PendingCount: > 0 } flow)
        {
            return;
        }

        // Also those that block later messages and whose routing timed out (a 3.1.1 client was disconnected for them).
        var waiting = _inboundAckState?.RemoveStartedBefore(long.MaxValue) ?? [];
        foreach (var packetId in _order?.Blocking ?? [])
        {
            if (!waiting.Contains(packetId) && flow.IsPending(packetId) && flow.StartRouting(packetId))
            {
                waiting.Add(packetId);
            }
        }

        if (waiting.Count == 0)
        {
            return;
        }

        _log.Info("Session {ClientId}: routing {Count} QoS 2 message(s) again that were still on their way when its client came back", _clientId, waiting.Count);
        RouteAgain(flow, waiting);
    }

    /// <summary>
    /// Routes the waiting messages again under their origins, in the order they came; the messages accepted next wait
    /// for them (<see cref="InboundRouteOrder{T}"/>). One no longer pending stops routing.
    /// </summary>
    private void RouteAgain(InboundQos2Flow flow, List<ushort> waiting)
    {
        var again = new List<InboundQos2Pending>(waiting.Count);
        List<ushort>? gone = null;
        foreach (var packetId in waiting)
        {
            if (flow.TryGetPending(packetId, out var pending))
            {
                again.Add(pending);
                Order.Block(packetId, pending.Message.Topic);
            }
            else
            {
                (gone ??= []).Add(packetId);
            }
        }

        again.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        foreach (var pending in again)
        {
            RouteInbound(pending);
        }

        foreach (var packetId in gone ?? [])
        {
            flow.StopRouting(packetId); // not pending: a Clean Start discarded it, or it has no origin to be recognised by
            RouteHeld(packetId);
        }
    }

    /// <summary>
    /// Pending QoS 2 messages that may have been lost with a node that left are routed again under their origins (see
    /// <see cref="RouteRetry"/>). A clean session's messages have no origin to be recognised by, so they wait for the
    /// timeout as before.
    /// </summary>
    private void RouteAgainAfterNodeLeft()
    {
        var nodes = _context.Nodes;
        var now = Environment.TickCount64;
        var cutoff = RouteRetry.Cutoff(nodes.LastLeftAtMs, (long)nodes.ShardsMovedAfter.TotalMilliseconds, now, ref Stored.ReroutedForLeftAtMs);
        if (cutoff == 0 || !_persistent || _inFlow is not { } flow || _inboundAcks.RemoveStartedBefore(cutoff) is not { } waiting)
        {
            return;
        }

        _log.Info("Session {ClientId}: routing {Count} QoS 2 message(s) again that waited for subscribers since a node left", _clientId, waiting.Count);
        RouteAgain(flow, waiting);
    }
}
