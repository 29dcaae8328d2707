namespace Broker.Sessions;

/// <summary>
/// When QoS 1/2 publishes that still wait for their subscribers' sessions are routed again because a node left.
/// <para>
/// A publish routed towards a node in the seconds between its death and the moment the others know its shards are
/// gone (failure detection, the split-brain resolver's decision, down-removal-margin) is lost with the node: no session
/// confirms it, and without this its publisher would wait for <c>Mqtt:DurableAckTimeout</c>, be refused and resend.
/// Once the node's shards can be reached again (<c>shardsMovedAfter</c> after it was downed) every publish that has
/// waited at least <see cref="MinWaitMs"/> and started before then is routed again, once per departure: a QoS 1
/// message may reach a subscriber twice (at least once allows it), a QoS 2 message goes again under its origin and the
/// subscribers that took it already recognise it.
/// </para>
/// </summary>
public static class RouteRetry
{
    /// <summary>A publish that waited less than this is still on its way, not lost.</summary>
    public const long MinWaitMs = 500;

    /// <summary>
    /// The time before which waiting publishes are to be routed again now, or 0 when nothing is due. Once it returned a
    /// cutoff for a departure it returns 0 until the next one (<paramref name="doneForLeftAtMs"/> remembers it).
    /// </summary>
    /// <param name="lastLeftAtMs">When the last node left (0: none did).</param>
    /// <param name="shardsMovedAfterMs">How long after a departure the node's shards can be reached again.</param>
    public static long Cutoff(long lastLeftAtMs, long shardsMovedAfterMs, long nowMs, ref long doneForLeftAtMs)
    {
        var movedAt = lastLeftAtMs + shardsMovedAfterMs;
        if (lastLeftAtMs == 0 || lastLeftAtMs == doneForLeftAtMs || nowMs < movedAt)
        {
            return 0;
        }

        doneForLeftAtMs = lastLeftAtMs;
        return Math.Min(nowMs - MinWaitMs, movedAt);
    }

    /// <summary>
    /// Whether a routing sent now may overtake an earlier one lost with a failed node (see
    /// <see cref="InboundRouteOrder{T}"/>): a member is unreachable, or one left so recently that what was lost with it
    /// has not been routed again yet (once its shards have moved, at the next sweep of <paramref name="sweepMs"/>; two
    /// sweeps allowed).
    /// </summary>
    public static bool InTrouble(long lastLeftAtMs, long shardsMovedAfterMs, bool anyUnreachable, long sweepMs, long nowMs) =>
        (lastLeftAtMs != 0 && nowMs < lastLeftAtMs + shardsMovedAfterMs + (2 * sweepMs)) || anyUnreachable;

    public static bool InTrouble(Cluster.NodeDirectory nodes, bool anyUnreachable, long sweepMs, long nowMs) =>
        InTrouble(nodes.LastLeftAtMs, (long)nodes.ShardsMovedAfter.TotalMilliseconds, anyUnreachable, sweepMs, nowMs);
}
