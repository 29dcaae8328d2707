namespace Broker.Channel;

/// <summary>
/// Whether a publisher's socket is read from: a publisher faster than the cluster can route and store is not read
/// (DotNetty AutoRead off) rather than buffered without bound. Paused when 4 QoS 0 probes are unanswered, when the
/// QoS 1 publishes awaiting PUBACK reach the server's Receive Maximum (MQTT-v5.0 4.9; a 3.1.1 client is held to the
/// same number), when a subscriber's full queue holds one of its publishes, or over the publish rate limit; resumed
/// only well below (one probe at most, QoS 1 below half the maximum), so that it does not flap at the edge. Pure.
/// <code>
///   reading ──(probes ≥ 4, QoS 1 in flight ≥ Receive Maximum, held, or rate-limited)──► paused
///   paused  ──(probes ≤ 1, QoS 1 in flight &lt; max(1, Receive Maximum / 2), nothing held, not rate-limited)──► reading
/// </code>
/// </summary>
public static class InboundReadGate
{
    /// <summary>Unanswered QoS 0 probes at which reading pauses.</summary>
    public const int PauseAtProbes = 4;

    /// <summary>Whether reading is paused after this check, given whether it was (<paramref name="paused"/>).</summary>
    public static bool Paused(bool paused, int probesOutstanding, int qos1InFlight, int receiveMaximum, bool rateLimited, bool held) =>
        paused
            ? !(probesOutstanding <= 1 && qos1InFlight < Math.Max(1, receiveMaximum / 2) && !rateLimited && !held)
            : probesOutstanding >= PauseAtProbes || qos1InFlight >= receiveMaximum || rateLimited || held;
}
