using System.Diagnostics.Metrics;
using Broker.Protocol;

namespace Broker.Cluster;

/// <summary>
/// The node's metrics as System.Diagnostics.Metrics instruments on a <see cref="Meter"/> named
/// <see cref="MeterName"/>, so that dotnet-counters, dotnet-monitor and OpenTelemetry's MeterProvider see them
/// (<c>dotnet-counters monitor -n Broker.Node --counters Broker</c>). The instruments are observable: they read the
/// lock-free counters of <see cref="BrokerMetrics"/> when a listener collects, so the message path pays nothing more.
/// The journal latency is a histogram instrument, recorded as each write completes. Names, tags and meanings are
/// those of <c>/metrics</c>, which is served from these instruments (README "Operations"); cluster membership and
/// shard counts, which need the actor system, are added to <c>/metrics</c> by the node.
/// </summary>
public sealed class BrokerMeter : IDisposable
{
    public const string MeterName = "Broker";

    private static readonly MqttQoS[] QoSLevels = [MqttQoS.AtMostOnce, MqttQoS.AtLeastOnce, MqttQoS.ExactlyOnce];

    public BrokerMeter(BrokerMetrics m)
    {
        Meter = new Meter(MeterName, typeof(BrokerMeter).Assembly.GetName().Version?.ToString());
        var meter = Meter;
        meter.CreateObservableGauge("mqtt_connections", () => m.Connections, description: "Open MQTT connections on this node (CONNECT received).");
        meter.CreateObservableCounter("mqtt_connects_total", () => m.Connects, description: "CONNECTs accepted (CONNACK success).");
        meter.CreateObservableCounter("mqtt_connects_refused_total", () => Enum.GetValues<MqttReasonCode>().Where(r => (byte)r >= 0x80).Distinct()
            .Select(r => new Measurement<long>(m.ConnectRefused(r), new KeyValuePair<string, object?>("reason", r.ToString())))
            .Where(x => x.Value > 0), description: "CONNECTs refused, by v5 reason code name.");
        meter.CreateObservableCounter("mqtt_disconnects_total", () => Enum.GetValues<DisconnectReason>()
            .Select(r => new Measurement<long>(m.Disconnects(r), new KeyValuePair<string, object?>("reason", Snake(r.ToString())))),
            description: "Accepted connections that ended, by reason.");
        PerQoS(meter, "mqtt_messages_received_total", "PUBLISH packets received from clients, by QoS.", m.PublishIn);
        PerQoS(meter, "mqtt_messages_sent_total", "PUBLISH packets sent to clients (resends included), by QoS.", m.PublishOut);
        PerQoS(meter, "mqtt_payload_bytes_received_total", "Payload bytes of PUBLISH packets received, by QoS.", m.PayloadBytesIn);
        PerQoS(meter, "mqtt_payload_bytes_sent_total", "Payload bytes of PUBLISH packets sent, by QoS.", m.PayloadBytesOut);
        meter.CreateObservableCounter("mqtt_bytes_received_total", () => m.BytesIn, "By", "Bytes of MQTT packets read from clients.");
        meter.CreateObservableCounter("mqtt_bytes_sent_total", () => m.BytesOut, "By", "Bytes of MQTT packets written to clients.");
        meter.CreateObservableCounter("mqtt_messages_dropped_total", () => new[]
        {
            new Measurement<long>(m.DroppedOldest, new KeyValuePair<string, object?>("reason", "queue_full_oldest")),
            new Measurement<long>(m.DroppedNewest, new KeyValuePair<string, object?>("reason", "queue_full_newest")),
            new Measurement<long>(m.DroppedOverflow, new KeyValuePair<string, object?>("reason", "queue_overflow")),
            new Measurement<long>(m.DroppedSlowConsumer, new KeyValuePair<string, object?>("reason", "slow_consumer")),
        }, description: "Messages acknowledged and dropped: a full session queue (by policy or overflow), or a QoS 0 message met a client that was not reading.");
        meter.CreateObservableCounter("mqtt_deliveries_refused_total", () => new[]
        {
            new Measurement<long>(m.RefusedQueueFull, new KeyValuePair<string, object?>("reason", "queue_full")),
        }, description: "QoS 1/2 deliveries a full session queue refused after holding their publishers.");
        meter.CreateObservableCounter("mqtt_publisher_holds_total", () => m.PublisherHolds, description: "Times a publisher started waiting on a subscriber's full queue.");
        meter.CreateObservableCounter("mqtt_messages_expired_total", () => m.Expired, description: "Messages whose Message Expiry Interval ran out.");
        meter.CreateObservableCounter("mqtt_auth_failures_total", () => m.AuthFailures, description: "Connections refused for credentials or authorization.");
        meter.CreateObservableCounter("mqtt_protocol_errors_total", () => m.ProtocolErrors, description: "Connections closed for malformed or illegal input.");
        meter.CreateObservableCounter("mqtt_durable_ack_timeouts_total", () => m.DurableAckTimeouts, description: "QoS 1/2 publishes not stored in time.");
        meter.CreateObservableCounter("mqtt_qos2_duplicates_suppressed_total", () => m.Qos2DuplicatesSuppressed, description: "QoS 2 deliveries routed twice and taken once.");
        meter.CreateObservableCounter("mqtt_acl_denied_total", () => new[]
        {
            new Measurement<long>(m.AclDeniedPublish, new KeyValuePair<string, object?>("action", "publish")),
            new Measurement<long>(m.AclDeniedSubscribe, new KeyValuePair<string, object?>("action", "subscribe")),
            new Measurement<long>(m.AclDeniedDelivery, new KeyValuePair<string, object?>("action", "delivery")),
        }, description: "PUBLISH packets, SUBSCRIBE filters and deliveries refused by the topic checks (token claims, HTTP service, ACL file).");
        meter.CreateObservableCounter("mqtt_rate_limit_pauses_total", () => m.RateLimitPauses, description: "Times a client's socket stopped being read for Mqtt:MaxPublishRate.");
        meter.CreateObservableCounter("mqtt_read_pauses_total", () => m.ReadPauses, description: "Times a publisher's socket stopped being read (back-pressure).");
        meter.CreateObservableGauge("mqtt_sessions", () => new[]
        {
            new Measurement<long>(m.SessionsOnline, new KeyValuePair<string, object?>("state", "online")),
            new Measurement<long>(Math.Max(0, m.Sessions - m.SessionsOnline), new KeyValuePair<string, object?>("state", "offline")),
        }, description: "Sessions hosted on this node, by state.");
        meter.CreateObservableGauge("mqtt_subscriptions", () => m.Subscriptions, description: "Subscriptions of the sessions hosted on this node.");
        meter.CreateObservableGauge("mqtt_messages_queued", () => m.Queued, description: "Messages waiting in the queues of sessions hosted on this node.");
        meter.CreateObservableGauge("mqtt_messages_inflight", () => m.Inflight, description: "Messages sent and not yet acknowledged.");
        meter.CreateObservableGauge("mqtt_retained_messages", () => m.RetainedMessages, description: "Topics holding a retained message.");
        var persistLatency = meter.CreateHistogram<double>("broker_persist_latency_seconds", "s",
            "Journal write latency of session and topic entities (PersistAsync to its callback).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyHistogram.Bounds });
        m.PersistLatency.Observed = persistLatency.Record;
        meter.CreateObservableCounter("broker_stored_session_starts_total", () => new[]
        {
            new Measurement<long>(m.SessionStartsFromStorage, new KeyValuePair<string, object?>("source", "storage")),
            new Measurement<long>(m.SessionStartsFromKept, new KeyValuePair<string, object?>("source", "kept")),
        }, description: "Stored sessions started on this node: recovered from storage, or from the state they kept in memory when they passivated.");
        meter.CreateObservableCounter("broker_storage_failures_total", () => m.StorageFailures, description: "Failed journal writes or recoveries.");
        meter.CreateObservableGauge("broker_uptime_seconds", () => (DateTimeOffset.UtcNow - m.StartedAt).TotalSeconds, "s", "Seconds since this node started.");
    }

    public Meter Meter { get; }

    public void Dispose() => Meter.Dispose();

    private static void PerQoS(Meter meter, string name, string description, Func<MqttQoS, long> read) =>
        meter.CreateObservableCounter(name, () => QoSLevels.Select(q =>
            new Measurement<long>(read(q), new KeyValuePair<string, object?>("qos", (int)q))), description: description);

    private static string Snake(string pascal) =>
        string.Concat(pascal.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
