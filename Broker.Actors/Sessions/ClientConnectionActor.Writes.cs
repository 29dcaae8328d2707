using Akka.Actor;
using Akka.Event;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Transport;

namespace Broker.Sessions;

/// <summary>Writing to the socket (batched, flushed once per mailbox drain) and closing it, with or without a reason.</summary>
public sealed partial class ClientConnectionActor
{
    /// <summary>
    /// Malformed or illegal input: log it, answer as <see cref="CloseRules.ForViolation"/> says (v5 DISCONNECT with the
    /// reason only after CONNACK [MQTT-4.13.1-1]) and close this one connection. Nothing else is affected.
    /// </summary>
    private void ProtocolViolation(MqttReasonCode reason, string what)
    {
        if (_closing)
        {
            return;
        }

        var close = CloseRules.ForViolation(reason, _connectReceived, _session is not null, IsV5);
        _context.Metrics.ProtocolError();
        EndingBecause(close.EndReason);
        _log.Warning("Client {ClientId} ({Address}) protocol violation, closing with 0x{ReasonCode:X2} {Reason}: {Detail}",
            string.IsNullOrEmpty(_clientId) ? "?" : _clientId, _remote, (byte)reason, reason, what);
        if (close.Answer == CloseAnswer.ConnAck)
        {
            _codec.Version = MqttProtocolVersion.V311; // [MQTT-3.1.2-2] an unknown protocol level is answered in 3.1.1 format
        }

        CloseWith(close);
    }

    /// <summary>Server-initiated close: v5 DISCONNECT with a reason, then close.</summary>
    private void Disconnect(MqttReasonCode reason)
    {
        if (_closing)
        {
            return;
        }

        var close = CloseRules.ForServerClose(reason, IsV5);
        EndingBecause(close.EndReason);
        CloseWith(close);
    }

    /// <summary>Writes what <paramref name="close"/> says (if anything), lets the session go (its will is published) and closes after the flush.</summary>
    private void CloseWith(CloseDecision close)
    {
        if (CloseRules.PacketOf(close) is { } last)
        {
            Write(last);
        }

        Detach(publishWill: true, newExpiry: null);
        CloseAfterFlush();
    }

    private void Detach(bool publishWill, uint? newExpiry)
    {
        _routeBatch?.Send(_context.TopicRegion); // publishes read before the connection ended go before its will
        if (_session is null || _sessionDormant)
        {
            return; // a dormant session's host learns that this connection stopped (PostStop), and has nothing else to do
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

        if (_pendingOne is null && (_pendingWrites is null || _pendingWrites.Count == 0))
        {
            _pendingOne = packet;
            ScheduleFlush();
            return;
        }

        var pending = _pendingWrites ??= new List<MqttPacket>();
        if (_pendingOne is { } first)
        {
            pending.Add(first);
            _pendingOne = null;
        }

        pending.Add(packet);
        if (pending.Count >= MaxBatch)
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
        var channel = _channel;
        if (_pendingOne is { } one)
        {
            _pendingOne = null;
            if (channel.EventLoop.InEventLoop)
            {
                WriteOne(channel, one);
            }
            else
            {
                WriteOneOnLoop(channel, one);
            }

            return;
        }

        if (_pendingWrites is null || _pendingWrites.Count == 0)
        {
            return;
        }

        if (channel.EventLoop.InEventLoop)
        {
            // This actor runs on its channel's loop (EventLoopDispatcher): write in place, keep the list.
            WriteAndFlush(channel, _codec, _pendingWrites);
            if (_pendingWrites.Count > 16)
            {
                _pendingWrites = null; // an idle connection does not keep a burst's array
            }
            else
            {
                _pendingWrites.Clear();
            }

            return;
        }

        WriteOnLoop(channel);
    }

    // Its own methods: the closures they allocate would otherwise be allocated on every flush, the in-place ones too.
    private void WriteOnLoop(DotNetty.Transport.Channels.IChannel channel)
    {
        var batch = _pendingWrites!;
        var codec = _codec;
        _pendingWrites = null;
        channel.EventLoop.Execute(() => WriteAndFlush(channel, codec, batch));
    }

    private static void WriteOneOnLoop(DotNetty.Transport.Channels.IChannel channel, MqttPacket packet) =>
        channel.EventLoop.Execute(() => WriteOne(channel, packet));

    /// <summary>A lone packet goes out through the pipeline's encoder.</summary>
    private static void WriteOne(DotNetty.Transport.Channels.IChannel channel, MqttPacket packet)
    {
        channel.WriteAsync(packet);
        channel.Flush();
    }

    /// <summary>A batch of several packets goes out encoded into one buffer (one write), a lone packet through the pipeline's encoder.</summary>
    private static void WriteAndFlush(DotNetty.Transport.Channels.IChannel channel, MqttCodecState codec, List<MqttPacket> batch)
    {
        if (batch.Count > 1 && MqttEncoderHandler.EncodeBatch(channel.Allocator, codec, batch) is { } encoded)
        {
            channel.WriteAsync(encoded);
        }
        else
        {
            foreach (var packet in batch)
            {
                channel.WriteAsync(packet);
            }
        }

        channel.Flush();
    }

    private void CloseAfterFlush()
    {
        FlushWrites();
        Move(ConnectionEvent.Closed);
        var channel = _channel;
        channel.EventLoop.Execute(() => channel.CloseAsync());
        Context.Stop(Self);
    }

    private void CloseNow()
    {
        Move(ConnectionEvent.Closed);
        Detach(publishWill: true, newExpiry: null);
        _channel.CloseAsync();
        Context.Stop(Self);
    }
}
