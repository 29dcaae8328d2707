using Akka.Actor;
using Akka.Event;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Sessions;

/// <summary>Writing to the socket (batched, flushed once per mailbox drain) and closing it, with or without a reason.</summary>
public sealed partial class ClientConnectionActor
{
    /// <summary>
    /// Malformed or illegal input: log it, send DISCONNECT with the reason (v5 only, and only after CONNACK
    /// [MQTT-4.13.1-1]) and close this one connection. Nothing else is affected.
    /// </summary>
    private void ProtocolViolation(MqttReasonCode reason, string what)
    {
        if (_closing)
        {
            return;
        }

        _context.Metrics.ProtocolError();
        EndingBecause(Cluster.DisconnectReason.ProtocolError);
        _log.Warning("Client {ClientId} ({Address}) protocol violation, closing with 0x{ReasonCode:X2} {Reason}: {Detail}",
            string.IsNullOrEmpty(_clientId) ? "?" : _clientId, _remote, (byte)reason, reason, what);
        if (!_connectReceived && reason == MqttReasonCode.UnsupportedProtocolVersion)
        {
            // [MQTT-3.1.2-2] answer an unknown protocol level with return code 0x01 in 3.1.1 format, then close.
            _codec.Version = MqttProtocolVersion.V311;
            Write(new MqttConnAckPacket { ReasonCode = (byte)MqttConnectReturnCode.UnacceptableProtocolVersion });
            Detach(publishWill: true, newExpiry: null);
            CloseAfterFlush();
            return;
        }

        if (_session is not null && IsV5)
        {
            Write(new MqttDisconnectPacket { ReasonCode = reason });
        }

        Detach(publishWill: true, newExpiry: null);
        CloseAfterFlush();
    }

    /// <summary>Server-initiated close: v5 DISCONNECT with a reason, then close.</summary>
    private void Disconnect(MqttReasonCode reason)
    {
        if (_closing)
        {
            return;
        }

        EndingBecause(ReasonOf(reason));
        if (IsV5)
        {
            Write(new MqttDisconnectPacket { ReasonCode = reason });
        }

        Detach(publishWill: true, newExpiry: null);
        CloseAfterFlush();
    }

    private void Detach(bool publishWill, uint? newExpiry)
    {
        _routeBatch?.Send(_context.TopicRegion); // publishes read before the connection ended go before its will
        if (_session is null)
        {
            return;
        }

        if (!_session.Equals(_besideSession))
        {
            Context.Unwatch(_session);
        }

        _session.Tell(new DetachSession(Self, publishWill, newExpiry));
        _session = null;
    }

    private void Write(MqttPacket packet)
    {
        if (_closing)
        {
            return;
        }

        _pendingWrites.Add(packet);
        if (_pendingWrites.Count >= MaxBatch)
        {
            // Large bursts go out in slices, so that the channel's writability is seen between them.
            FlushWrites();
            return;
        }

        ScheduleFlush();
    }

    /// <summary>Everything already in the mailbox is handled before the flush, so one covers the whole batch (of writes and of publishes to route).</summary>
    private void ScheduleFlush()
    {
        if (!_flushScheduled)
        {
            _flushScheduled = true;
            Self.Tell(Flush.Instance);
        }
    }

    private void FlushWrites()
    {
        if (_pendingWrites.Count == 0)
        {
            return;
        }

        var channel = _channel;
        if (channel.EventLoop.InEventLoop)
        {
            // This actor runs on its channel's loop (EventLoopDispatcher): write in place, keep the list.
            WriteAndFlush(channel, _pendingWrites);
            if (_pendingWrites.Count > 16)
            {
                _pendingWrites = new List<MqttPacket>(); // an idle connection does not keep a burst's array
            }
            else
            {
                _pendingWrites.Clear();
            }

            return;
        }

        var batch = _pendingWrites;
        _pendingWrites = new List<MqttPacket>(Math.Min(batch.Count, 64));
        channel.EventLoop.Execute(() => WriteAndFlush(channel, batch));
    }

    private static void WriteAndFlush(DotNetty.Transport.Channels.IChannel channel, List<MqttPacket> batch)
    {
        foreach (var packet in batch)
        {
            channel.WriteAsync(packet);
        }

        channel.Flush();
    }

    private void CloseAfterFlush()
    {
        FlushWrites();
        _closing = true;
        var channel = _channel;
        channel.EventLoop.Execute(() => channel.CloseAsync());
        Context.Stop(Self);
    }

    private void CloseNow()
    {
        _closing = true;
        Detach(publishWill: true, newExpiry: null);
        _channel.CloseAsync();
        Context.Stop(Self);
    }
}
