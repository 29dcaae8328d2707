using Akka.Actor;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Inbound back-pressure: a publisher faster than the cluster can route is not read from (DotNetty AutoRead off)
/// rather than buffered without bound in actor mailboxes. QoS 1/2 publishes are counted until acknowledged; QoS 0
/// has no acknowledgement, so every 256th one carries a reply address, and the topic's answer tells how far behind
/// routing is. Reading resumes when the backlog has drained.
/// <code>
///   reading ──(QoS 0 probes outstanding ≥ 4, or QoS 1/2 pending ≥ Mqtt:ReceiveMaximum)──► paused
///   paused  ──(probes ≤ 1 and QoS 1/2 pending below half)──────────────────────────────► reading
///   (and over Mqtt:MaxPublishRate: paused until the token bucket has a token again, see ClientConnectionActor.Security)
/// </code>
/// </summary>
public sealed partial class ClientConnectionActor
{
    private const int ProbeEvery = 256;
    private const int PauseAtProbes = 4;
    private readonly HashSet<long> _qos0Probes = new();
    private long _qos0Count;
    private long _nextProbeId = long.MinValue; // apart from the QoS 1 collector's ids, which count up from 1
    private bool _readingPaused;

    /// <summary>Routes a QoS 0 publish; one in <see cref="ProbeEvery"/> asks the topic to answer when routed.</summary>
    private void RouteQos0(MqttApplicationMessage message)
    {
        if (++_qos0Count % ProbeEvery != 0)
        {
            _context.TopicRegion.Tell(new RoutePublish(message, null, 0));
            return;
        }

        var probeId = ++_nextProbeId;
        _qos0Probes.Add(probeId);
        _context.TopicRegion.Tell(new RoutePublish(message, Self, probeId));
        UpdateReading();
    }

    /// <summary>True when the answer was for a QoS 0 probe (and is consumed here).</summary>
    private bool ProbeAnswered(long ackId)
    {
        if (!_qos0Probes.Remove(ackId))
        {
            return false;
        }

        UpdateReading();
        return true;
    }

    private void UpdateReading()
    {
        var limit = _context.Options.Mqtt.ReceiveMaximum;
        var pending = _inboundQos1InFlight.Count;
        if (!_readingPaused && (_qos0Probes.Count >= PauseAtProbes || pending >= limit || _rateLimited))
        {
            _readingPaused = true;
            if (!_rateLimited)
            {
                _context.Metrics.ReadPaused(); // rate-limit pauses are counted apart (RateLimitPauses)
            }

            SetAutoRead(false);
        }
        else if (_readingPaused && _qos0Probes.Count <= 1 && pending < Math.Max(1, limit / 2) && !_rateLimited)
        {
            _readingPaused = false;
            SetAutoRead(true);
        }
    }

    private void SetAutoRead(bool on)
    {
        var channel = _channel;
        channel.EventLoop.Execute(() => channel.Configuration.AutoRead = on);
    }
}
