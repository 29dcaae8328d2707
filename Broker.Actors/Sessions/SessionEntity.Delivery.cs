using Akka.Event;
using Akka.Cluster.Sharding;
using Akka.Actor;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>Outbound messages: queueing, the in-flight window and the client's acknowledgements (MQTT-4.3, 4.4).</summary>
public sealed partial class SessionEntity
{
    /// <summary>QoS 2 messages taken, by origin: journaled with each <see cref="MessageQueued"/>, kept in snapshots.</summary>
    private SeenOrigins? _seen; // created when the first QoS 2 message with an origin is taken

    private void HandleDeliver(Deliver deliver)
    {
        if (deliver.ConfirmedByHost)
        {
            _gauge?.Arrived(deliver.Message.Payload.Length);
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var resolved = _ending ? null : DeliveryResolver.Resolve(_subscriptions, _clientId, deliver);
        if (resolved is null || deliver.Message.IsExpired(now))
        {
            if (resolved is not null)
            {
                _context.Metrics.ExpiredAdd();
            }

            Confirm(deliver);
            if (Unused)
            {
                // Woken by a stale route to a session that no longer exists: go back to sleep.
                Leave();
            }

            return;
        }

        if (deliver.Origin is { } origin && _seen?.Contains(deliver.Message.PublisherClientId, origin) == true)
        {
            // The same QoS 2 message routed again (its publisher's session moved or failed while routing it): it is
            // stored here already, or on its way to storage; confirm once every write so far is stored.
            _context.Metrics.Qos2DuplicateSuppressed();
            ConfirmAfterWrites(deliver);
            return;
        }

        if (resolved.QoS == MqttQoS.AtMostOnce)
        {
            // QoS 0 is neither queued nor kept for an offline client (nor its origin journaled: at most once is kept
            // while this session lives).
            if (deliver.Origin is not null)
            {
                (_seen ??= new()).Record(deliver.Message.PublisherClientId, deliver.Origin);
            }

            if (_connection is not null && deliver.AckTo is not null)
            {
                // A back-pressure probe: the connection answers it once the message is written (it may be on another node).
                _connection.Tell(new SendPublish(resolved, 0, false, deliver.AckTo, deliver.AckId));
                return;
            }

            _connection?.Tell(new SendPublish(resolved, 0, false));
            Confirm(deliver);
            return;
        }

        if (!Connected && !_persistent)
        {
            Confirm(deliver);
            return;
        }

        Offer(deliver, resolved);
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

    private void HandleOutboundAck(OutboundAck ack)
    {
        if (!ack.Connection.Equals(_connection))
        {
            return;
        }

        switch (_out.OnAck(ack.Type, ack.PacketId, ack.ReasonCode))
        {
            case OutboundFlow.AckAction.Unknown when ack.Type == MqttPacketType.PubRec:
                // MQTT-v5.0 3.6.2.1: PUBREL for an unknown id carries "Packet Identifier not found".
                ack.Connection.Tell(new SendPacket(new MqttPubRelPacket
                {
                    PacketId = ack.PacketId,
                    ReasonCode = _version == MqttProtocolVersion.V500 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success,
                }));
                break;
            case OutboundFlow.AckAction.Complete:
                // The window slot is free at once: if the node dies before the completion is journaled, the message
                // is only sent again.
                Store(new MessageCompleted(ack.PacketId));
                Pump();
                break;
            case OutboundFlow.AckAction.PubRelAgain:
                ack.Connection.Tell(new SendPacket(new MqttPubRelPacket { PacketId = ack.PacketId }));
                break;
            case OutboundFlow.AckAction.Release:
                Store(new MessageReleased(ack.PacketId), () =>
                    _connection?.Tell(new SendPacket(new MqttPubRelPacket { PacketId = ack.PacketId })));
                break;
        }
    }
}
