using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Operations;

/// <summary>
/// /metrics keeps the names, types and label names dashboards and alerts are written against: the table below is
/// what the page served before it came from prometheus-net (plus the ACL and rate-limit counters added with it), and
/// every family must still be there, as it was.
/// </summary>
public sealed class MetricFamiliesSpecs
{
    /// <summary>family -> (type, label names) as served by the node.</summary>
    private static readonly Dictionary<string, (string Type, string Labels)> Expected = new()
    {
        ["mqtt_connections"] = ("gauge", ""),
        ["mqtt_connects_total"] = ("counter", ""),
        ["mqtt_connects_refused_total"] = ("counter", "reason"),
        ["mqtt_disconnects_total"] = ("counter", "reason"),
        ["mqtt_messages_received_total"] = ("counter", "qos"),
        ["mqtt_messages_sent_total"] = ("counter", "qos"),
        ["mqtt_payload_bytes_received_total"] = ("counter", "qos"),
        ["mqtt_payload_bytes_sent_total"] = ("counter", "qos"),
        ["mqtt_bytes_received_total"] = ("counter", ""),
        ["mqtt_bytes_sent_total"] = ("counter", ""),
        ["mqtt_messages_dropped_total"] = ("counter", "reason"),
        ["mqtt_deliveries_refused_total"] = ("counter", "reason"),
        ["mqtt_publisher_holds_total"] = ("counter", ""),
        ["mqtt_messages_expired_total"] = ("counter", ""),
        ["mqtt_auth_failures_total"] = ("counter", ""),
        ["mqtt_protocol_errors_total"] = ("counter", ""),
        ["mqtt_durable_ack_timeouts_total"] = ("counter", ""),
        ["mqtt_qos2_duplicates_suppressed_total"] = ("counter", ""),
        ["mqtt_read_pauses_total"] = ("counter", ""),
        ["mqtt_acl_denied_total"] = ("counter", "action"),
        ["mqtt_rate_limit_pauses_total"] = ("counter", ""),
        ["mqtt_sessions"] = ("gauge", "state"),
        ["mqtt_subscriptions"] = ("gauge", ""),
        ["mqtt_messages_queued"] = ("gauge", ""),
        ["mqtt_messages_inflight"] = ("gauge", ""),
        ["mqtt_retained_messages"] = ("gauge", ""),
        ["broker_storage_failures_total"] = ("counter", ""),
        ["broker_stored_session_starts_total"] = ("counter", "source"),
        ["broker_persist_latency_seconds"] = ("histogram", ""),
        ["broker_cluster_members"] = ("gauge", "status"),
        ["broker_cluster_unreachable_members"] = ("gauge", ""),
        ["broker_shards"] = ("gauge", "region"),
        ["broker_entities"] = ("gauge", "region"),
        ["broker_uptime_seconds"] = ("gauge", ""),
    };

    [Fact]
    public async Task Every_family_keeps_its_name_type_and_labels()
    {
        await using var ops = await OperationsHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxConnections = 1 } });
        var publisher = ops.Broker.NewClient();
        await publisher.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "families").WithCleanStart(false).WithSessionExpiryInterval(60).Build());
        await publisher.SubscribeAsync("families/t", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("families/t").WithPayload("x")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var refused = ops.Broker.NewClient();
        await refused.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "families-2").Build());
        await ops.WaitForMetricsAsync(s => s.ContainsKey("mqtt_connects_refused_total{reason=\"QuotaExceeded\"}")
            && s.GetValueOrDefault("broker_persist_latency_seconds_count") > 0, "a refusal and a journal write");

        using var response = await ops.Client.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();
        var types = new Dictionary<string, string>();
        var labels = new Dictionary<string, SortedSet<string>>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                types[parts[2]] = parts[3];
                labels.TryAdd(parts[2], new SortedSet<string>());
            }
            else if (!line.StartsWith('#'))
            {
                var name = line[..line.IndexOfAny(['{', ' '])];
                var family = types.ContainsKey(name) ? name : FamilyOf(name);
                var brace = line.IndexOf('{');
                if (brace > 0)
                {
                    foreach (var pair in line[(brace + 1)..line.IndexOf('}')].Split(','))
                    {
                        var label = pair[..pair.IndexOf('=')];
                        if (label != "le")
                        {
                            labels[family].Add(label);
                        }
                    }
                }
            }
        }

        foreach (var (family, (type, labelNames)) in Expected)
        {
            Assert.True(types.ContainsKey(family), $"{family} is missing from /metrics");
            Assert.Equal((family, type), (family, types[family]));
            Assert.Equal((family, labelNames), (family, string.Join(",", labels[family])));
        }
    }

    private static string FamilyOf(string sample)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal))
            {
                return sample[..^suffix.Length];
            }
        }

        return sample;
    }
}
