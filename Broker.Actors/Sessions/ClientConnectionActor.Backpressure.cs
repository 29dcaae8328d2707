using Akka.Event;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Akka.Actor;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Inbound back-pressure: a publisher faster than the cluster can route and deliver is not read from (DotNetty
/// AutoRead off) rather than buffered without bound in actor mailboxes. QoS 1/2 publishes are counted until
/// acknowledged; QoS 0 has no acknowledgement, so every 256th one is a probe that carries a reply address: the topic
/// says to how many sessions it went, and each of those sessions hands it to its connection, which answers once it has
/// the message (across nodes when the session lives elsewhere). So a publisher waits when the subscribers fall behind
/// (fan-in: 50 publishers into one subscriber), not only when routing does; before, it was read at full speed and
/// the surplus was dropped at the subscriber, after every hop had been paid for. A probe not answered within <see cref="ProbeTimeoutMs"/> (a session
/// lost with its node) counts as answered. A slow subscriber socket does not stall publishers: its connection drops
/// QoS 0 once the channel is unwritable, and answers probes all the same. Reading resumes when the backlog has
/// drained. Below all of this, the channel handler stops reading by itself when more than
/// <see cref="Transport.MqttCodecState.BacklogHigh"/> decoded packets wait in this actor's mailbox (a starved actor
/// cannot decide anything in time), and reading resumes at <see cref="Transport.MqttCodecState.BacklogLow"/>.
/// <code>
///   reading ──(QoS 0 probes outstanding ≥ 4, QoS 1 pending ≥ Mqtt:ReceiveMaximum, or a QoS 1 or QoS 2 publish
///              held by a subscriber's full queue)────────────────────────────────────────► paused
///   paused  ──(probes ≤ 1, QoS 1 pending below half and nothing held)───────────────────► reading
///   (and over Mqtt:MaxPublishRate: paused until the token bucket has a token again, see ClientConnectionActor.Security)
/// </code>
/// </summary>
public sealed partial class ClientConnectionActor
{
    private const int ProbeEvery = 256;
    private const long ProbeTimeoutMs = 5000;

    // Probe ids count up from long.MinValue, apart from the QoS 1 collector's ids, which count up from 1.
    // created with the first QoS 0 probe
    private AckCollector<bool>? _qos0ProbesState { get => _occasional?.Qos0Probes; set { if (_occasional is not null || value is not null) Occasional.Qos0Probes = value; } }

    private AckCollector<bool> _qos0Probes => _qos0ProbesState ??= new(firstId: long.MinValue);

    private int Qos0ProbesCount => _qos0ProbesState?.Count ?? 0;
    private long _qos0Count;
    private bool _readingPaused;

    /// <summary>Routes a QoS 0 publish; one in <see cref="ProbeEvery"/> asks the topic to answer when routed.</summary>
    private void RouteQos0(MqttApplicationMessage message)
    {
        if (++_qos0Count % ProbeEvery != 0)
        {
            RouteToTopic(new RoutePublish(message, null, 0));
            return;
        }

        var probeId = _qos0Probes.Expect(true, Environment.TickCount64);
        RouteToTopic(new RoutePublish(message, Self, probeId));
        EnsureAckSweep();
        UpdateReading();
    }

    private static bool IsProbe(long ackId) => ackId < 0;

    /// <summary>The topic routed a probe to <paramref name="deliveries"/> sessions.</summary>
    private void ProbeRouted(long ackId, int deliveries)
    {
        if (_qos0Probes.OnRouted(ackId, deliveries, out _))
        {
            UpdateReading();
        }
    }

    /// <summary>One session handed a probe to its connection.</summary>
    private void ProbeDelivered(long ackId)
    {
        if (_qos0Probes.OnStored(ackId, out _))
        {
            UpdateReading();
        }
    }

    /// <summary>Probes unanswered for <see cref="ProbeTimeoutMs"/> count as answered (their session may be gone).</summary>
    private void SweepProbes()
    {
        if (Qos0ProbesCount > 0 && _qos0Probes.RemoveStartedBefore(Environment.TickCount64 - ProbeTimeoutMs) is not null)
        {
            UpdateReading();
        }
    }

    /// <summary>
    /// A subscriber's full queue holds a QoS 1 publish of this client: its PUBACK waits, and so does reading, until
    /// every held publish is taken or refused (the hold is bounded by Sessions:MaxPublisherHold at that queue).
    /// </summary>
    private void PublishHeld(long ackId)
    {
        var wasHeld = AnyHeld;
        if (_inboundState?.Qos1Held(ackId, Environment.TickCount64) == true)
        {
            HoldBegan(wasHeld);
        }
    }

    /// <summary>
    /// The same for a QoS 2 publish (its session says so): its PUBREC waits, and reading pauses as for QoS 1, until
    /// PUBREC (or a refusal) goes out.
    /// </summary>
    private void Qos2Held(ushort packetId)
    {
        var wasHeld = AnyHeld;
        if (_inboundState?.Qos2Held(packetId) == true)
        {
            HoldBegan(wasHeld);
        }
    }

    /// <summary>A QoS 2 publish was answered (PUBREC, a refusal): if a full queue held it, reading may resume.</summary>
    private void Qos2Answered(bool wasHeld)
    {
        if (wasHeld && _readingPaused)
        {
            UpdateReading();
        }
    }

    private bool AnyHeld => _inboundState?.AnyHeld == true;

    private void HoldBegan(bool wasHeld)
    {
        if (!wasHeld)
        {
            _context.Metrics.PublisherHeld();
        }

        UpdateReading();
    }

    /// <summary>A publish a full queue (or a session slow to confirm) refused: logged at most once a minute per connection; 3.1.1 is disconnected.</summary>
    private void PublishRefused(ushort packetId, bool qos2)
    {
        if (Occasional.RefusedLog.Due(Environment.TickCount64, 60_000, out var count))
        {
            _log.Warning("Client {ClientId} ({Address}): {Count} QoS {QoS} publish(es) refused by a subscriber's full queue (after holding the publisher up to {HoldSeconds} s, or at once while that queue refuses until it drains) or by a session slow to store them{Consequence}",
                _clientId, _remote, count, qos2 ? 2 : 1, _context.Options.PublisherHoldSeconds,
                IsV5 ? "; answered with reason 0x97" : "; closing the connection unacknowledged (MQTT 3.1.1 has no refusal code)");
        }

        if (!IsV5)
        {
            Disconnect(CloseRules.PublishRefusedV311);
        }
    }

    private void HandleInboundStoreFailed(InboundStoreFailed f)
    {
        var pubRec = _inbound.HandOverFailed(f.PacketId, f.Refused, out var wasHeld);
        Qos2Answered(wasHeld);
        if (f.Refused)
        {
            PublishRefused(f.PacketId, qos2: true);
        }
        else
        {
            _log.Warning("Client {ClientId} ({Address}): QoS 2 publish {PacketId} could not be stored for every subscriber in time", _clientId, _remote, f.PacketId);
        }

        if (pubRec is { } reason)
        {
            Write(new MqttPubRecPacket { PacketId = f.PacketId, ReasonCode = reason });
        }
        else if (!f.Refused)
        {
            Disconnect(CloseRules.NotStoredInTimeV311); // (a refused one is closed by PublishRefused)
        }
    }

    private void UpdateReading()
    {
        var paused = InboundReadGate.Paused(_readingPaused, Qos0ProbesCount, _inboundState?.Qos1InFlight ?? 0,
            _context.Options.Mqtt.ReceiveMaximum, _rateLimited, AnyHeld);
        if (paused && !_readingPaused)
        {
            _readingPaused = true;
            if (!_rateLimited)
            {
                _context.Metrics.ReadPaused(); // rate-limit pauses are counted apart (RateLimitPauses)
            }

            SetAutoRead(false);
        }
        else if (!paused && _readingPaused)
        {
            _readingPaused = false;
            SetAutoRead(true);
        }
    }

    /// <summary>
    /// A probe of another publisher's QoS 0 message reached this connection: answered here rather than by the session,
    /// so that the answer waits for the hop from the session to the connection, which crosses nodes when the client is
    /// connected to another node than its session's (remoting has no back-pressure of its own).
    /// </summary>
    private static void AnswerProbe(SendPublish send) => send.ProbeTo?.Tell(new DeliveryStored(send.ProbeId));

    private void SetAutoRead(bool on)
    {
        var channel = _channel;
        var codec = _codec;
        codec.PausedByActor = !on;
        channel.EventLoop.Execute(() => codec.ApplyAutoRead(channel));
    }

    /// <summary>A packet put aside comes through AroundReceive again when unstashed: count it as pending again.</summary>
    private void StashPacket()
    {
        Interlocked.Increment(ref _codec.PendingPackets);
        Stash.Stash();
    }

    /// <summary>The mailbox backlog of decoded packets is down to the low mark: the channel may read again.</summary>
    private void ResumeAfterBacklog()
    {
        var channel = _channel;
        var codec = _codec;
        channel.EventLoop.Execute(() =>
        {
            // Always clear: if the backlog has grown again, the next read pauses again (no state can stay stuck off).
            codec.PausedByBacklog = false;
            codec.ApplyAutoRead(channel);
        });
    }
}
