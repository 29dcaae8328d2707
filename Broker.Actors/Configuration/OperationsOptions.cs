namespace Broker.Configuration;

/// <summary>
/// The node's HTTP endpoint for operators: Prometheus metrics at /metrics, health at /health/live and /health/ready,
/// and (with <see cref="ManagementOptions.Token"/>) the management API under /api. Port 0 turns it off.
/// </summary>
public sealed record MetricsOptions
{
    public string Address { get; init; } = "127.0.0.1";

    public int Port { get; init; }

    /// <summary>
    /// OTLP/HTTP receiver (an OpenTelemetry Collector, Prometheus with OTLP on, ...) that the "Broker" meter is pushed
    /// to, e.g. http://127.0.0.1:4318; empty: no push. Independent of <see cref="Port"/>.
    /// </summary>
    public string OtlpEndpoint { get; init; } = "";

    /// <summary>Seconds between OTLP pushes.</summary>
    public int OtlpIntervalSeconds { get; init; } = 15;
}

/// <summary>
/// Mosquitto-style $SYS topics, published (retained) by every node every <see cref="Interval"/> seconds; 0 = off, the
/// default: each value is a retained message journaled by its topic entity like any other (about 30 topics per node,
/// twice that on the leader), which an operator should choose rather than find.
/// </summary>
public sealed record SysOptions
{
    public int Interval { get; init; }
}

/// <summary>The management API (on the metrics port) is served only when <see cref="Token"/> is set (bearer token).</summary>
public sealed record ManagementOptions
{
    public string Token { get; init; } = "";
}
