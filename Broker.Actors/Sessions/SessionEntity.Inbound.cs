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
/// </summary>
public sealed partial class SessionEntity
{
    private readonly AckCollector<ushort> _inboundAcks = new();
    private HashSet<ushort>? _inboundRouting; // created on the first inbound QoS 2 publish

    private void HandleInboundQos2(InboundQos2Publish publish)
    {
        if (!publish.Connection.Equals(_connection))
        {
            return;
        }

        if (_inboundQos2?.Contains(publish.PacketId) == true)
        {
            _connection.Tell(new SendPacket(new MqttPubRecPacket { PacketId = publish.PacketId }));
            return;
        }

        if (!(_inboundRouting ??= new()).Add(publish.PacketId))
        {
            return; // a duplicate while the first copy is still being stored: PUBREC follows once it is
        }

        var ackId = _inboundAcks.Expect(publish.PacketId, Environment.TickCount64);
        _context.TopicRegion.Tell(new RoutePublish(publish.Message, Self, ackId));
        if (!Timers.IsTimerActive(InboundSweep.Instance))
        {
            Timers.StartPeriodicTimer(InboundSweep.Instance, InboundSweep.Instance, TimeSpan.FromSeconds(1));
        }
    }

    private void InboundRouted(long ackId, int deliveries)
    {
        if (_inboundAcks.OnRouted(ackId, deliveries, out var packetId))
        {
            InboundComplete(packetId);
        }
    }

    private void InboundStored(long ackId)
    {
        if (_inboundAcks.OnStored(ackId, out var packetId))
        {
            InboundComplete(packetId);
        }
    }

    private void InboundComplete(ushort packetId)
    {
        Store(new InboundQos2Stored(packetId), () =>
        {
            _inboundRouting?.Remove(packetId);
            _connection?.Tell(new SendPacket(new MqttPubRecPacket { PacketId = packetId }));
        });
    }

    /// <summary>Inbound QoS 2 messages whose storage did not complete in time are refused, never acknowledged.</summary>
    private void SweepInbound()
    {
        var expired = _inboundAcks.RemoveStartedBefore(Environment.TickCount64 - (_context.Options.Mqtt.DurableAckTimeout * 1000L));
        if (_inboundAcks.Count == 0)
        {
            Timers.Cancel(InboundSweep.Instance);
        }

        foreach (var packetId in expired ?? [])
        {
            _context.Metrics.DurableAckTimeout();
            _inboundRouting?.Remove(packetId);
            _connection?.Tell(new InboundStoreFailed(packetId));
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
