using Akka.Event;
using Akka.Cluster.Sharding;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Outbound messages: queueing, the in-flight window and the client's acknowledgements (MQTT-4.3, 4.4). The rules are
/// <see cref="SessionDelivery"/>'s and <see cref="OutboundFlow"/>'s; this carries their decisions out.
/// </summary>
public sealed partial class SessionEntity
{
    /// <summary>QoS 2 messages taken, by origin: journaled with each <see cref="MessageQueued"/>, kept in snapshots.</summary>
    private SeenOrigins? _seen; // created when the first QoS 2 message with an origin is taken

    /// <summary>A message routed to this session: the decision is <see cref="SessionDelivery.Deliver"/>'s.</summary>
    private void HandleDeliver(Deliver deliver)
    {
        if (deliver.ConfirmedByHost)
        {
            _gauge?.Arrived(deliver.Message.Payload.Length);
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var resolved = _ending ? null : DeliveryResolver.Resolve(_subscriptions, _clientId, deliver);
        var decision = SessionDelivery.Deliver(
            resolved, deliver.Message, deliver.Origin, _seen, canHold: deliver.AckTo is not null, Connected, _persistent, now);
        if (decision.RecordOrigin)
        {
            (_seen ??= new()).Record(deliver.Message.PublisherClientId, deliver.Origin!);
        }

        switch (decision.Action)
        {
            case DeliverAction.Unresolved or DeliverAction.Expired:
                if (decision.Action == DeliverAction.Expired)
                {
                    _context.Metrics.ExpiredAdd();
                }

                Confirm(deliver);
                if (Unused)
                {
                    // Woken by a stale route to a session that no longer exists: go back to sleep.
                    Leave();
                }

                break;
            case DeliverAction.Duplicate:
                // Stored here already, or on its way to storage: confirmed once every write so far is stored.
                _context.Metrics.Qos2DuplicateSuppressed();
                ConfirmAfterWrites(deliver);
                break;
            case DeliverAction.SendQos0Probe:
                // A back-pressure probe: the connection answers it once the message is written (it may be on another node).
                _connection!.Tell(new SendPublish(resolved!, 0, false, deliver.AckTo, deliver.AckId));
                break;
            case DeliverAction.SendQos0:
                _connection!.Tell(new SendPublish(resolved!, 0, false));
                Confirm(deliver);
                break;
            case DeliverAction.DropQos0:
            case DeliverAction.DropOffline:
                Confirm(deliver);
                break;
            case DeliverAction.Offer:
                Offer(deliver, resolved!);
                break;
        }
    }

    private static void Confirm(Deliver deliver) => deliver.AckTo?.Tell(new DeliveryStored(deliver.AckId));

    // Its own method: a lambda in HandleDeliver would allocate its closure on every delivery, not only on this path.
    private void ConfirmAfterWrites(Deliver deliver) => AfterWrites(() => Confirm(deliver));

    /// <summary>Moves queued messages into the in-flight window while the client is connected and the window has room.</summary>
    private void Pump()
    {
        if (_context.Fenced)
        {
            return; // see Store
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // A message goes out only once it is stored (a copy the client has must survive a crash, or a publisher's
        // resend would make a second one), under the packet id its position gives. The send itself is not journaled:
        // after a crash the same message goes again with DUP set and the same id [MQTT-4.4.0-1], never a second copy
        // under another id (for QoS 2 that would be a second delivery). It waits while a message in flight holds
        // that id (65,535 positions back, or an id from an older journal).
        while (Connected && _outFlow is not null && _outFlow.Next(now) is var step && (step.Send ?? step.Expired) is not null)
        {
            if (step.Expired is { } expired)
            {
                _context.Metrics.ExpiredAdd();
                Store(new MessageDiscarded(expired.Seq));
                continue;
            }

            _connection!.Tell(new SendPublish(step.Send!, step.PacketId, step.Dup));
        }

        ReleaseHeld();
    }

    /// <summary>The client acknowledges a message this session sent: the decision is <see cref="SessionDelivery.OnAck"/>'s.</summary>
    private void HandleOutboundAck(OutboundAck ack)
    {
        if (!ack.Connection.Equals(_connection))
        {
            return;
        }

        var decision = SessionDelivery.OnAck(_out, ack.Type, ack.PacketId, ack.ReasonCode, _version);
        switch (decision.Action)
        {
            case OutboundAckAction.PubRelNotFound:
                ack.Connection.Tell(new SendPacket(new MqttPubRelPacket { PacketId = ack.PacketId, ReasonCode = decision.PubRelReason }));
                break;
            case OutboundAckAction.Complete:
                // The window slot is free at once: if the node dies before the completion is journaled, the message
                // is only sent again.
                Store(new MessageCompleted(ack.PacketId));
                Pump();
                break;
            case OutboundAckAction.PubRelAgain:
                ack.Connection.Tell(new SendPacket(new MqttPubRelPacket { PacketId = ack.PacketId }));
                break;
            case OutboundAckAction.Release:
                ReleaseThenPubRel(ack.PacketId);
                break;
        }
    }

    /// <summary>The release is journaled, then PUBREL goes (its own method: the closure is made only for a PUBREC).</summary>
    private void ReleaseThenPubRel(ushort packetId) =>
        Store(new MessageReleased(packetId), () => _connection?.Tell(new SendPacket(new MqttPubRelPacket { PacketId = packetId })));
}
