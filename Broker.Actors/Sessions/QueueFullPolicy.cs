namespace Broker.Sessions;

/// <summary>
/// What a session's full queue does with a new QoS 1/2 message (<c>Sessions:QueueFullPolicy</c>). A PUBACK/PUBREC is a
/// promise of delivery, so the default never breaks it: <see cref="Backpressure"/> holds the publishers' acknowledgements
/// (and stops reading their sockets) until the queue drains, and past <c>Sessions:MaxPublisherHold</c> refuses the
/// message (v5 reason 0x97). The two drop policies acknowledge and drop, counted, as Mosquitto (newest) and EMQX (oldest) do.
/// </summary>
public enum QueueFullPolicy
{
    Backpressure,
    DropOldest,
    DropNewest,
}

public static class QueueFullPolicies
{
    /// <summary>The configuration spelling ("backpressure", "drop-oldest", "drop-newest"); null when unknown.</summary>
    public static QueueFullPolicy? Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "backpressure" => QueueFullPolicy.Backpressure,
        "drop-oldest" => QueueFullPolicy.DropOldest,
        "drop-newest" => QueueFullPolicy.DropNewest,
        _ => null,
    };
}
