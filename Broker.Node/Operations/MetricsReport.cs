using System.Globalization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Broker.Cluster;
using Broker.Protocol;

namespace Broker.Node.Operations;

/// <summary>
/// The node's /metrics page: the counters of <see cref="BrokerMetrics"/>, cluster membership as this node sees it,
/// and the shards and entities this node hosts (asked of the shard regions at scrape time, with a timeout).
/// </summary>
public static class MetricsReport
{
    private static readonly TimeSpan RegionTimeout = TimeSpan.FromSeconds(2);
    private static readonly MqttQoS[] QoSLevels = [MqttQoS.AtMostOnce, MqttQoS.AtLeastOnce, MqttQoS.ExactlyOnce];

    public static async Task<string> RenderAsync(BrokerServer server)
    {
        var m = server.Context.Metrics;
        var text = new PrometheusText();
        MqttCounters(text, m);
        SessionGauges(text, m);
        Persistence(text, m);
        ClusterMembers(text, server.System);
        await Sharding(text, server).ConfigureAwait(false);
        text.Single("broker_uptime_seconds", "gauge", "Seconds since this node started.",
            (DateTimeOffset.UtcNow - m.StartedAt).TotalSeconds);
        return text.ToString();
    }

    private static void MqttCounters(PrometheusText text, BrokerMetrics m)
    {
        text.Single("mqtt_connections", "gauge", "Open MQTT connections on this node (CONNECT received).", m.Connections);
        text.Single("mqtt_connects_total", "counter", "CONNECTs accepted (CONNACK success).", m.Connects);
        text.Family("mqtt_connects_refused_total", "counter", "CONNECTs refused, by v5 reason code name.");
        foreach (var reason in Enum.GetValues<MqttReasonCode>().Where(r => (byte)r >= 0x80).Distinct())
        {
            var n = m.ConnectRefused(reason);
            if (n > 0)
            {
                text.Sample("mqtt_connects_refused_total", n, ("reason", reason.ToString()));
            }
        }

        text.Family("mqtt_disconnects_total", "counter", "Accepted connections that ended, by reason.");
        foreach (var reason in Enum.GetValues<DisconnectReason>())
        {
            text.Sample("mqtt_disconnects_total", m.Disconnects(reason), ("reason", Snake(reason.ToString())));
        }

        PerQoS(text, "mqtt_messages_received_total", "PUBLISH packets received from clients, by QoS.", m.PublishIn);
        PerQoS(text, "mqtt_messages_sent_total", "PUBLISH packets sent to clients (resends included), by QoS.", m.PublishOut);
        PerQoS(text, "mqtt_payload_bytes_received_total", "Payload bytes of PUBLISH packets received, by QoS.", m.PayloadBytesIn);
        PerQoS(text, "mqtt_payload_bytes_sent_total", "Payload bytes of PUBLISH packets sent, by QoS.", m.PayloadBytesOut);
        text.Single("mqtt_bytes_received_total", "counter", "Bytes of MQTT packets read from clients (all packet types).", m.BytesIn);
        text.Single("mqtt_bytes_sent_total", "counter", "Bytes of MQTT packets written to clients (all packet types).", m.BytesOut);
        text.Family("mqtt_messages_dropped_total", "counter", "Messages acknowledged and dropped: a full session queue dropped its oldest or the new one (Sessions:QueueFullPolicy), a message nobody waited on met a queue at twice its bounds, or a QoS 0 message met a client that was not reading.")
            .Sample("mqtt_messages_dropped_total", m.DroppedOldest, ("reason", "queue_full_oldest"))
            .Sample("mqtt_messages_dropped_total", m.DroppedNewest, ("reason", "queue_full_newest"))
            .Sample("mqtt_messages_dropped_total", m.DroppedOverflow, ("reason", "queue_overflow"))
            .Sample("mqtt_messages_dropped_total", m.DroppedSlowConsumer, ("reason", "slow_consumer"));
        text.Family("mqtt_deliveries_refused_total", "counter", "QoS 1/2 deliveries a full session queue refused after holding their publishers for Sessions:MaxPublisherHold (publisher told 0x97, or disconnected unacknowledged for 3.1.1).")
            .Sample("mqtt_deliveries_refused_total", m.RefusedQueueFull, ("reason", "queue_full"));
        text.Single("mqtt_publisher_holds_total", "counter", "Times a publisher started waiting on a subscriber's full queue (PUBACK held, socket not read).", m.PublisherHolds);
        text.Single("mqtt_messages_expired_total", "counter", "Messages whose Message Expiry Interval ran out before delivery.", m.Expired);
        text.Single("mqtt_auth_failures_total", "counter", "Connections refused for bad credentials or authorization.", m.AuthFailures);
        text.Single("mqtt_protocol_errors_total", "counter", "Connections closed for malformed or illegal input.", m.ProtocolErrors);
        text.Single("mqtt_durable_ack_timeouts_total", "counter", "QoS 1/2 publishes not acknowledged because storing them took longer than Mqtt:DurableAckTimeout.", m.DurableAckTimeouts);
        text.Single("mqtt_qos2_duplicates_suppressed_total", "counter", "QoS 2 deliveries routed a second time (their publisher's session moved while routing them) that a session had taken already: acknowledged, not stored or sent again.", m.Qos2DuplicatesSuppressed);
        text.Single("mqtt_read_pauses_total", "counter", "Times a publisher's socket stopped being read (back-pressure).", m.ReadPauses);
    }

    private static void SessionGauges(PrometheusText text, BrokerMetrics m)
    {
        var online = m.SessionsOnline;
        text.Family("mqtt_sessions", "gauge", "Sessions hosted on this node, by state (online: a connection is attached).")
            .Sample("mqtt_sessions", online, ("state", "online"))
            .Sample("mqtt_sessions", Math.Max(0, m.Sessions - online), ("state", "offline"));
        text.Single("mqtt_subscriptions", "gauge", "Subscriptions of the sessions hosted on this node.", m.Subscriptions);
        text.Single("mqtt_messages_queued", "gauge", "Messages waiting in the queues of sessions hosted on this node.", m.Queued);
        text.Single("mqtt_messages_inflight", "gauge", "Messages sent to clients of sessions on this node and not yet acknowledged.", m.Inflight);
        text.Single("mqtt_retained_messages", "gauge", "Topics holding a retained message (cluster-wide, this node's replica of the index).", m.RetainedMessages);
    }

    private static void Persistence(PrometheusText text, BrokerMetrics m)
    {
        text.Single("broker_storage_failures_total", "counter", "Journal writes or recoveries that failed.", m.StorageFailures);
        const string name = "broker_persist_latency_seconds";
        var h = m.PersistLatency;
        text.Family(name, "histogram", "Journal write latency of session and topic entities (PersistAsync to its callback).");
        long cumulative = 0;
        for (var i = 0; i < LatencyHistogram.Bounds.Length; i++)
        {
            cumulative += h.Bucket(i);
            text.Sample(name + "_bucket", cumulative, ("le", LatencyHistogram.Bounds[i].ToString("R", CultureInfo.InvariantCulture)));
        }

        cumulative += h.Bucket(LatencyHistogram.Bounds.Length);
        text.Sample(name + "_bucket", cumulative, ("le", "+Inf"));
        text.Sample(name + "_sum", h.SumSeconds);
        text.Sample(name + "_count", cumulative);
    }

    private static void ClusterMembers(PrometheusText text, ActorSystem system)
    {
        var state = Akka.Cluster.Cluster.Get(system).State;
        text.Family("broker_cluster_members", "gauge", "Cluster members as this node sees them, by status.");
        foreach (var status in Enum.GetValues<MemberStatus>())
        {
            text.Sample("broker_cluster_members", state.Members.Count(x => x.Status == status), ("status", status.ToString()));
        }

        text.Single("broker_cluster_unreachable_members", "gauge", "Members this node's failure detector marks unreachable.", state.Unreachable.Count);
    }

    private static async Task Sharding(PrometheusText text, BrokerServer server)
    {
        var regions = new[] { ("session", server.Context.SessionRegion), ("topic", server.Context.TopicRegion) };
        var states = await Task.WhenAll(regions.Select(async r =>
        {
            try
            {
                return await r.Item2.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, RegionTimeout).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                return null;
            }
        })).ConfigureAwait(false);
        text.Family("broker_shards", "gauge", "Shards hosted on this node, by region (absent when the region did not answer in time).");
        for (var i = 0; i < regions.Length; i++)
        {
            if (states[i] is { } s)
            {
                text.Sample("broker_shards", s.Shards.Count, ("region", regions[i].Item1));
            }
        }

        text.Family("broker_entities", "gauge", "Entities running on this node, by region (absent when the region did not answer in time).");
        for (var i = 0; i < regions.Length; i++)
        {
            if (states[i] is { } s)
            {
                text.Sample("broker_entities", s.Shards.Sum(x => x.EntityIds.Count), ("region", regions[i].Item1));
            }
        }
    }

    private static void PerQoS(PrometheusText text, string name, string help, Func<MqttQoS, long> read)
    {
        text.Family(name, "counter", help);
        foreach (var qos in QoSLevels)
        {
            text.Sample(name, read(qos), ("qos", ((int)qos).ToString(CultureInfo.InvariantCulture)));
        }
    }

    private static string Snake(string pascal) =>
        string.Concat(pascal.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
