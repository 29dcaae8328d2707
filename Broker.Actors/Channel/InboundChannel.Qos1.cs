using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Channel;

/// <summary>
/// When a QoS 1 publisher hears PUBACK: once the topic said to how many sessions it routed the message and each of
/// them stored it (the durability promise, <see cref="AckCollector{TState}"/>); with 0x97 when a full queue refused it
/// or a session did not confirm it in time; with 0x80 when it could not be stored in time. A 3.1.1 publisher has no
/// failure code: it is disconnected unacknowledged instead, and sends the messages again. While earlier messages on a
/// topic may have been lost with a failed node, later ones wait behind them (<see cref="InboundRouteOrder{T}"/>,
/// [MQTT-4.6.0-6]) and are routed once those are acknowledged or given up.
/// <code>
///   Accept ─► RouteQos1 (ack id) ─► Routed(n) + n × Stored ─► Qos1Completion: PUBACK 0x00 / 0x97, route held
///          └► Qos1Held (behind a blocking one) ──────────────► routed when nothing blocks its topic
///   not stored in time ─► TimedOut: PUBACK 0x80 (3.1.1: disconnected)
/// </code>
/// </summary>
public sealed partial class InboundChannel
{
    private AckCollector<(ushort PacketId, MqttApplicationMessage Message)>? _acks; // created with the first QoS 1 publish
    private InboundRouteOrder<(ushort PacketId, MqttApplicationMessage Message)>? _qos1Order; // created when a topic is first blocked

    private AckCollector<(ushort PacketId, MqttApplicationMessage Message)> Acks => _acks ??= new();

    /// <summary>QoS 1 publishes routed and waiting for their sessions' confirmations (not the held ones).</summary>
    public int Qos1AwaitingRouting => _acks?.Count ?? 0;

    /// <summary>Whether <paramref name="ackId"/> is one of this channel's QoS 1 publishes still waiting.</summary>
    public bool IsQos1Pending(long ackId) => _acks?.IsPending(ackId) == true;

    /// <summary>The topic routed QoS 1 publish <paramref name="ackId"/> to <paramref name="deliveries"/> sessions: true when that completed it.</summary>
    public bool Routed(long ackId, int deliveries, long nowMs, out Qos1Completion completion)
    {
        if (_acks is null || !_acks.OnRouted(ackId, deliveries, out var state))
        {
            completion = default;
            return false;
        }

        completion = Complete(state.PacketId, _acks.CompletedRefused, nowMs);
        return true;
    }

    /// <summary>
    /// <paramref name="count"/> sessions stored (or, <paramref name="refused"/>, refused) QoS 1 publish
    /// <paramref name="ackId"/>: true when that completed it.
    /// </summary>
    public bool Stored(long ackId, int count, bool refused, long nowMs, out Qos1Completion completion)
    {
        if (_acks is null || !_acks.OnStored(ackId, out var state, count, refused))
        {
            completion = default;
            return false;
        }

        completion = Complete(state.PacketId, _acks.CompletedRefused, nowMs);
        return true;
    }

    /// <summary>A subscriber's full queue holds QoS 1 publish <paramref name="ackId"/>: true when this is new (reading pauses).</summary>
    public bool Qos1Held(long ackId, long nowMs) => _acks is not null && _acks.MarkHeld(ackId, nowMs, out _);

    /// <summary>
    /// Every matching session has stored the message (or one refused it, or did not confirm it in time): PUBACK may go.
    /// A refused message is not acknowledged as taken: v5 hears 0x97 (Quota exceeded); 3.1.1 has no refusal code, so
    /// no PUBACK goes, the connection closes and the client sends the held messages again with the rest.
    /// </summary>
    public Qos1Completion Complete(ushort packetId, bool refused, long nowMs)
    {
        _qos1InFlight?.Remove(packetId);
        var routeNow = !refused || _v5 ? Unblocked(packetId, nowMs) : null;
        return new Qos1Completion(packetId, refused, Acknowledge: !refused || _v5,
            refused ? MqttReasonCode.QuotaExceeded : MqttReasonCode.Success, routeNow);
    }

    /// <summary>
    /// QoS 1 publish <paramref name="packetId"/> was not stored in time (storage down, a node lost): the publisher must not
    /// wait forever and must not be told the message is safe. v5: PUBACK 0x80, and what waited behind it goes;
    /// 3.1.1: no PUBACK (the connection closes and the client resends).
    /// </summary>
    public Qos1Completion TimedOut(ushort packetId, long nowMs)
    {
        _qos1InFlight?.Remove(packetId);
        return new Qos1Completion(packetId, Refused: false, Acknowledge: _v5, MqttReasonCode.UnspecifiedError,
            _v5 ? Unblocked(packetId, nowMs) : null);
    }

    /// <summary>QoS 1 publishes routed before <paramref name="cutoffMs"/> and still waiting: removed and returned in the order they came.</summary>
    public List<(ushort PacketId, MqttApplicationMessage Message)>? RemoveStartedBefore(long cutoffMs) =>
        _acks?.RemoveStartedBefore(cutoffMs);

    /// <summary>QoS 1 publishes a session has not confirmed within <paramref name="holdMs"/> (see <see cref="AckCollector{TState}.RemoveUnconfirmed"/>).</summary>
    public List<(ushort PacketId, MqttApplicationMessage Message)>? RemoveUnconfirmed(long nowMs, long holdMs) =>
        _acks?.RemoveUnconfirmed(nowMs, holdMs);

    /// <summary>
    /// QoS 1 publishes that waited since before <paramref name="cutoffMs"/> (a node left, and what was on its way to it
    /// may be lost): to route again, each with a new ack id, in the order they came (see <see cref="RouteRetry"/>).
    /// </summary>
    public List<(long AckId, MqttApplicationMessage Message)>? RouteAgain(long cutoffMs, long nowMs)
    {
        if (RemoveStartedBefore(cutoffMs) is not { } waiting)
        {
            return null;
        }

        var again = new List<(long AckId, MqttApplicationMessage Message)>(waiting.Count);
        foreach (var entry in waiting)
        {
            again.Add((Acks.Expect(entry, nowMs), entry.Message));
        }

        return again;
    }

    /// <summary>
    /// Whether a QoS 1 publish waits for earlier ones on its topic that may have been lost with a failed node: while
    /// the nodes are in trouble, those still on their way block the topic.
    /// </summary>
    private bool HoldQos1(ushort packetId, MqttApplicationMessage message, bool nodesInTrouble)
    {
        var topic = message.Topic;
        if (_acks?.Count > 0 && nodesInTrouble)
        {
            foreach (var (earlierId, earlier) in _acks.States)
            {
                if (string.Equals(earlier.Topic, topic, StringComparison.Ordinal))
                {
                    (_qos1Order ??= new()).Block(earlierId, topic);
                }
            }
        }

        return _qos1Order?.TryHold((packetId, message), topic) == true;
    }

    /// <summary><paramref name="packetId"/> is acknowledged or given up: what waited behind it, in order, once nothing blocks its topic.</summary>
    private List<(long AckId, MqttApplicationMessage Message)>? Unblocked(ushort packetId, long nowMs)
    {
        if (_qos1Order?.Done(packetId) is not { } held)
        {
            return null;
        }

        var route = new List<(long AckId, MqttApplicationMessage Message)>(held.Count);
        foreach (var entry in held)
        {
            route.Add((Acks.Expect(entry, nowMs), entry.Message));
        }

        return route;
    }
}
