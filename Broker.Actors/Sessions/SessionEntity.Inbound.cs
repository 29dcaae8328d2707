using Akka.Event;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Inbound QoS 2 (MQTT-4.3.3, method B of the spec's figure 4.3): the message is routed once, stored for every
/// subscriber, then its packet id is journaled and PUBREC sent; a duplicate PUBLISH with that id is answered with
/// PUBREC again without routing, until PUBREL releases the id.
/// <para>
/// Exactly once across a move of this session. A persistent session first journals the message as pending under an
/// origin (<see cref="InboundQos2Pending"/>: this session's random stream id and the next sequence number) and routes
/// it only once that is stored. If the session then stops before every subscriber has stored the message (its shard
/// handed off, its node killed), the session that recovers routes the pending message again under the same origin,
/// and each subscriber's session that took it already acknowledges it without storing it again
/// (<see cref="SeenOrigins"/>). Every routed message carries the lowest sequence number that may still be routed
/// again (<see cref="_unsettled"/>: allocated and not yet journaled as stored), so that subscribers forget the rest.
/// A clean session cannot be recovered, so it writes nothing and routes at once, without an origin.
/// </para>
/// <code>
///   PUBLISH P ──► journal Pending(P, seq) ──► route (origin seq) ──► all stored ──► PUBREC, journal Stored(P)
///                        └─ session moves or dies before Stored ──► recovered: route Pending(P, seq) again
/// </code>
/// PUBREC does not wait for Stored: every subscriber has the message, and until Stored is journaled the pending entry
/// answers for it (a recovery routes it again under its origin, and subscribers forget an origin only once Stored or
/// Released is journaled). A PUBREL for a message the recovered session is routing again releases it at once.
/// </summary>
public sealed partial class SessionEntity
{
    private readonly AckCollector<ushort> _inboundAcks = new();
    private HashSet<ushort>? _inboundRouting; // created on the first inbound QoS 2 publish
    private Dictionary<ushort, InboundQos2Pending>? _inboundPending; // created with the first pending message
    private SortedSet<long>? _unsettled;
    private HashSet<ushort>? _releasedWhileRouting; // PUBREL for a message a recovered session was routing again
    private long _originStream; // 0 until this session's first QoS 2 message
    private long _originSeq;
    private long _reroutedForLeftAtMs; // see RouteRetry

    private void HandleInboundQos2(InboundQos2Publish publish)
    {
        if (!publish.Connection.Equals(_connection))
        {
            return;
        }

        var packetId = publish.PacketId;
        if (_inboundQos2?.Contains(packetId) == true)
        {
            _connection.Tell(new SendPacket(new MqttPubRecPacket { PacketId = packetId }));
            return;
        }

        if (!(_inboundRouting ??= new()).Add(packetId))
        {
            return; // a duplicate while the first copy is still being stored: PUBREC follows once it is
        }

        if (_inboundPending?.TryGetValue(packetId, out var known) == true)
        {
            // Accepted before and not yet stored for every subscriber (the client resends it with DUP): the same
            // message again, under the same origin.
            RouteInbound(known);
            return;
        }

        if (!_persistent)
        {
            RouteInbound(packetId, publish.Message, null);
            return;
        }

        var stream = _originStream != 0 ? _originStream : NewOriginStream();
        var pending = new InboundQos2Pending(packetId, stream, _originSeq + 1, publish.Message);
        (_unsettled ??= new()).Add(pending.Seq);
        Store(pending, () =>
        {
            if (_inboundPending?.TryGetValue(packetId, out var current) == true && current.Seq == pending.Seq)
            {
                RouteInbound(pending);
            }
            else
            {
                _inboundRouting?.Remove(packetId); // a Clean Start discarded it meanwhile
            }
        });
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
        if (_inboundPending is null || _inboundPending.Count == 0)
        {
            return;
        }

        var pending = _inboundPending.Values.OrderBy(p => p.Seq).ToList();
        foreach (var p in pending)
        {
            (_unsettled ??= new()).Add(p.Seq);
        }

        _log.Info("Session {ClientId}: routing {Count} QoS 2 message(s) again that were accepted but not yet stored for every subscriber",
            _clientId, pending.Count);
        foreach (var p in pending)
        {
            if ((_inboundRouting ??= new()).Add(p.PacketId))
            {
                RouteInbound(p);
            }
        }
    }

    private void RouteInbound(InboundQos2Pending pending)
    {
        var unsettled = _unsettled ??= new();
        unsettled.Add(pending.Seq);
        RouteInbound(pending.PacketId, pending.Message, new MessageOrigin(pending.Stream, pending.Seq, unsettled.Min));
    }

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

    private void InboundRouted(long ackId, int deliveries)
    {
        if (_inboundAcks.OnRouted(ackId, deliveries, out var packetId))
        {
            if (_inboundAcks.CompletedRefused)
            {
                InboundFailed(packetId, refused: true);
                return;
            }

            InboundComplete(packetId);
        }
    }

    private void InboundStored(long ackId, int count, DeliveryOutcome outcome = DeliveryOutcome.Stored)
    {
        if (outcome == DeliveryOutcome.Held)
        {
            // A subscriber's full queue holds it: PUBREC waits, and the connection stops reading meanwhile, as for QoS 1.
            if (_inboundAcks.MarkHeld(ackId, Environment.TickCount64, out var heldId))
            {
                _connection?.Tell(new InboundQos2Held(heldId));
            }

            return;
        }

        if (_inboundAcks.OnStored(ackId, out var packetId, count, outcome == DeliveryOutcome.Refused))
        {
            if (_inboundAcks.CompletedRefused)
            {
                InboundFailed(packetId, refused: true);
                return;
            }

            InboundComplete(packetId);
        }
    }

    private void InboundComplete(ushort packetId)
    {
        _inboundRouting?.Remove(packetId);
        if (_releasedWhileRouting?.Remove(packetId) == true)
        {
            return; // routed again after a recovery, and released meanwhile: done
        }

        var seq = _inboundPending?.TryGetValue(packetId, out var pending) == true ? pending.Seq : 0;

        // Only once Stored is journaled may subscribers forget the origin: until then a recovery routes it again.
        Store(new InboundQos2Stored(packetId), () => _unsettled?.Remove(seq));
        _connection?.Tell(new SendPacket(new MqttPubRecPacket { PacketId = packetId }));
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
        var expired = _inboundAcks.RemoveStartedBefore(Environment.TickCount64 - (_context.Options.Mqtt.DurableAckTimeout * 1000L));
        if (_inboundAcks.Count == 0)
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
        if (_inboundAcks.Count == 0
            || !UnconfirmedBound.Applies(_version == MqttProtocolVersion.V500, _context.Options.Sessions.Policy,
                Akka.Cluster.Cluster.Get(Context.System).State.Unreachable.Count > 0, nodes.LastLeftAtMs,
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
    /// Pending QoS 2 messages that may have been lost with a node that left are routed again under their origins (see
    /// <see cref="RouteRetry"/>). A clean session's messages have no origin to be recognised by, so they wait for the
    /// timeout as before.
    /// </summary>
    private void RouteAgainAfterNodeLeft()
    {
        var nodes = _context.Nodes;
        var now = Environment.TickCount64;
        var cutoff = RouteRetry.Cutoff(nodes.LastLeftAtMs, (long)nodes.ShardsMovedAfter.TotalMilliseconds, now, ref _reroutedForLeftAtMs);
        if (cutoff == 0 || !_persistent || _inboundPending is null || _inboundAcks.RemoveStartedBefore(cutoff) is not { } waiting)
        {
            return;
        }

        _log.Info("Session {ClientId}: routing {Count} QoS 2 message(s) again that waited for subscribers since a node left", _clientId, waiting.Count);
        foreach (var packetId in waiting)
        {
            if (_inboundPending.TryGetValue(packetId, out var pending))
            {
                RouteInbound(pending);
            }
            else
            {
                _inboundRouting?.Remove(packetId); // not pending any more: a Clean Start discarded it
            }
        }
    }

    /// <summary>
    /// An inbound QoS 2 message not stored for every subscriber in time, or <paramref name="refused"/> by a full queue:
    /// never acknowledged as taken (v5 PUBREC 0x80 / 0x97; 3.1.1 disconnected, see <see cref="SweepInbound"/>).
    /// </summary>
    private void InboundFailed(ushort packetId, bool refused)
    {
        if (_releasedWhileRouting?.Remove(packetId) == true)
        {
            _inboundRouting?.Remove(packetId);
            return; // the client completed it already (see InboundComplete)
        }

        if (_inboundPending?.TryGetValue(packetId, out var pending) == true && _connection is not null && _version == MqttProtocolVersion.V500)
        {
            Store(new InboundQos2Released(packetId), () =>
            {
                _unsettled?.Remove(pending.Seq);
                _inboundRouting?.Remove(packetId);
                _connection?.Tell(new InboundStoreFailed(packetId, refused));
            });
            return;
        }

        _inboundRouting?.Remove(packetId);
        _connection?.Tell(new InboundStoreFailed(packetId, refused));
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

        if (_inboundQos2?.Contains(release.PacketId) != true && _inboundPending?.TryGetValue(release.PacketId, out var pending) == true)
        {
            // PUBREC went before this session was recovered (its Stored was not journaled yet), and the recovered
            // session routes it again: the client's release ends it, and that routing only meets subscribers who
            // have it.
            var packetId = release.PacketId;
            if (_inboundRouting?.Contains(packetId) == true)
            {
                (_releasedWhileRouting ??= new()).Add(packetId);
            }

            Store(new InboundQos2Released(packetId), () =>
            {
                _unsettled?.Remove(pending.Seq);
                _connection?.Tell(new SendPacket(new MqttPubCompPacket { PacketId = packetId }));
            });
            return;
        }

        if (_inboundQos2?.Contains(release.PacketId) != true)
        {
            // MQTT-v5.0 3.7.2.1: PUBCOMP "Packet Identifier not found" (3.1.1 simply completes).
            _connection.Tell(new SendPacket(new MqttPubCompPacket
            {
                PacketId = release.PacketId,
                ReasonCode = _version == MqttProtocolVersion.V500 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success,
            }));
            return;
        }

        Store(new InboundQos2Released(release.PacketId), () =>
            _connection?.Tell(new SendPacket(new MqttPubCompPacket { PacketId = release.PacketId })));
    }
}
