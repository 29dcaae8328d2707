namespace Broker.Sessions;

/// <summary>
/// How long a QoS 1/2 publish may wait for the sessions it goes to before its publisher is answered anyway. A session
/// that is slow to confirm (recovering a long journal, its shard handing off, its storage stalled) is handled like a
/// full queue, not by everyone's acknowledgements: after <c>Sessions:MaxPublisherHold</c> the publish is refused,
/// v5 PUBACK/PUBREC 0x97 (Quota exceeded), never acknowledged, since the slow session has not stored it. MQTT 3.1.1
/// has no refusal code: under <c>backpressure</c> its connection is closed unacknowledged (as for a full queue); under
/// the drop policies, which an operator chooses so that publishers are not disconnected, a 3.1.1 publisher waits
/// for the storage up to <c>Mqtt:DurableAckTimeout</c> as before.
/// <code>
///   routed ──(every session confirmed)──────────────────────────────► PUBACK/PUBREC
///      └───(one has not, after MaxPublisherHold)─────────────────────► 0x97 (v5) / closed unacknowledged (3.1.1)
///      └───(a node is unreachable, or its shards are moving)─────────► wait: RouteRetry, then Mqtt:DurableAckTimeout
/// </code>
/// While a node is unreachable or its shards are moving after it left, the sessions it held are not slow but gone
/// for a moment: publishes wait for <see cref="RouteRetry"/> to route them again, and the bound starts again after.
/// </summary>
public static class UnconfirmedBound
{
    /// <summary>Whether publishes not confirmed within the hold are to be refused now.</summary>
    /// <param name="lastLeftAtMs">When the last node left (0: none did).</param>
    /// <param name="shardsMovedAfterMs">How long after a departure the node's shards can be reached again.</param>
    public static bool Applies(bool v5, QueueFullPolicy policy, bool anyUnreachable, long lastLeftAtMs, long shardsMovedAfterMs,
        long holdMs, long nowMs) =>
        (v5 || policy == QueueFullPolicy.Backpressure)
        && !anyUnreachable
        && (lastLeftAtMs == 0 || nowMs >= lastLeftAtMs + shardsMovedAfterMs + holdMs);

    /// <summary>How often a publisher with publishes waiting checks them: a quarter of the hold, 50 ms to 1 s.</summary>
    public static TimeSpan CheckEvery(long holdMs) => TimeSpan.FromMilliseconds(Math.Clamp(holdMs / 4, 50, 1000));
}
