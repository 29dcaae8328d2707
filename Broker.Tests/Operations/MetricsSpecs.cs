using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Operations;

/// <summary>
/// GET /metrics over real HTTP while real MQTT clients send traffic: the counters match what the test sent.
/// Each test has its own node, so the counters start at zero.
/// </summary>
public sealed class MetricsSpecs
{
    [Fact]
    public async Task Scrape_while_traffic_flows_and_the_counters_match_what_was_sent()
    {
        await using var ops = await OperationsHarness.StartAsync();
        var subscriber = ops.Broker.NewClient();
        var received = new MessageCollector(subscriber);
        await subscriber.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "metrics-sub")
            .WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("metrics/+/value", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var publisher = await ops.Broker.ConnectAsync(MqttProtocolVersion.V311, "metrics-pub");

        // Scrape in a loop while the publisher sends: every scrape answers, and the counters only grow.
        using var stop = new CancellationTokenSource();
        var scrapes = new List<double>();
        var scraping = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var samples = await ops.ScrapeAsync();
                scrapes.Add(samples["mqtt_messages_received_total{qos=\"0\"}"] + samples["mqtt_messages_received_total{qos=\"1\"}"]);
            }
        });

        const int qos0 = 30, qos1 = 20, qos2 = 5, size = 100;
        for (var i = 0; i < qos0 + qos1 + qos2; i++)
        {
            var qos = i < qos0 ? MqttQualityOfServiceLevel.AtMostOnce
                : i < qos0 + qos1 ? MqttQualityOfServiceLevel.AtLeastOnce : MqttQualityOfServiceLevel.ExactlyOnce;
            await publisher.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic($"metrics/{i % 3}/value").WithPayload(new byte[size]).WithQualityOfServiceLevel(qos).Build());
        }

        await received.WaitForAsync(qos0 + qos1 + qos2, TimeSpan.FromSeconds(20));
        stop.Cancel();
        await scraping;
        Assert.NotEmpty(scrapes);
        Assert.Equal(scrapes.OrderBy(x => x), scrapes);

        // The subscription is QoS 1: QoS 0 goes out as 0, QoS 1 and 2 go out as 1. Sent counts settle once the
        // subscriber's acknowledgements are in (no resends happen on a healthy connection).
        var m = await ops.WaitForMetricsAsync(s => s["mqtt_messages_sent_total{qos=\"1\"}"] >= qos1 + qos2 && s["mqtt_messages_inflight"] == 0, "all acknowledged");
        Assert.Equal(qos0, m["mqtt_messages_received_total{qos=\"0\"}"]);
        Assert.Equal(qos1, m["mqtt_messages_received_total{qos=\"1\"}"]);
        Assert.Equal(qos2, m["mqtt_messages_received_total{qos=\"2\"}"]);
        Assert.Equal(qos0 * size, m["mqtt_payload_bytes_received_total{qos=\"0\"}"]);
        Assert.Equal(qos1 * size, m["mqtt_payload_bytes_received_total{qos=\"1\"}"]);
        Assert.Equal(qos0, m["mqtt_messages_sent_total{qos=\"0\"}"]);
        Assert.Equal(qos1 + qos2, m["mqtt_messages_sent_total{qos=\"1\"}"]);
        Assert.Equal(0, m["mqtt_messages_sent_total{qos=\"2\"}"]);
        Assert.Equal((qos1 + qos2) * size, m["mqtt_payload_bytes_sent_total{qos=\"1\"}"]);
        // Socket bytes include headers and acknowledgements, so they exceed the payloads.
        Assert.True(m["mqtt_bytes_received_total"] > (qos0 + qos1 + qos2) * size);
        Assert.True(m["mqtt_bytes_sent_total"] > (qos0 + qos1 + qos2) * size);

        Assert.Equal(2, m["mqtt_connections"]);
        Assert.Equal(2, m["mqtt_connects_total"]);
        Assert.Equal(2, m["mqtt_sessions{state=\"online\"}"]);
        Assert.Equal(0, m["mqtt_sessions{state=\"offline\"}"]);
        Assert.Equal(1, m["mqtt_subscriptions"]);
        Assert.Equal(0, m["mqtt_messages_queued"]);
        // The persistent subscriber's session journaled its QoS 1 deliveries: the write latency was measured.
        Assert.True(m["broker_persist_latency_seconds_count"] > 0);
        Assert.Equal(m["broker_persist_latency_seconds_count"], m["broker_persist_latency_seconds_bucket{le=\"+Inf\"}"]);
        Assert.Equal(1, m["broker_cluster_members{status=\"Up\"}"]);
        Assert.True(m["broker_entities{region=\"session\"}"] >= 2);
        Assert.True(m["broker_shards{region=\"session\"}"] >= 1);

        // The persistent subscriber leaves: its session stays, offline; the disconnect is counted by reason.
        await subscriber.DisconnectAsync();
        // The session goes offline when the connection detaches; the connection counts its end when it stops, a moment
        // later; each session actor reports its own gauges as it handles a message: wait until they all agree.
        m = await ops.WaitForMetricsAsync(
            s => s["mqtt_sessions{state=\"offline\"}"] == 1 && s["mqtt_sessions{state=\"online\"}"] == 1 &&
                 s.GetValueOrDefault("mqtt_disconnects_total{reason=\"client_disconnect\"}") == 1 && s["mqtt_connections"] == 1,
            "one offline session, one online, one connection, and the disconnect counted");
        Assert.Equal(1, m["mqtt_sessions{state=\"online\"}"]);
        Assert.Equal(1, m["mqtt_disconnects_total{reason=\"client_disconnect\"}"]);
        Assert.Equal(1, m["mqtt_connections"]);
    }

    [Fact]
    public async Task Retained_messages_refusals_and_queued_messages_are_counted()
    {
        // $SYS off: its topics are retained too and would be counted beside the two of this test.
        await using var ops = await OperationsHarness.StartAsync(o => o with
        {
            Mqtt = o.Mqtt with { MaxConnections = 2 },
            Sys = new Broker.Configuration.SysOptions { Interval = 0 },
        });
        var publisher = await ops.Broker.ConnectAsync(MqttProtocolVersion.V500, "metrics-retain");
        foreach (var topic in new[] { "metrics/r/1", "metrics/r/2" })
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("x")
                .WithRetainFlag().WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        await ops.WaitForMetricsAsync(s => s["mqtt_retained_messages"] == 2, "two retained messages");

        // An offline persistent session queues what is published for it.
        var offline = ops.Broker.NewClient();
        await offline.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "metrics-offline")
            .WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        await offline.SubscribeAsync("metrics/q", MqttQualityOfServiceLevel.AtLeastOnce);
        await offline.DisconnectAsync();
        for (var i = 0; i < 3; i++)
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("metrics/q").WithPayload("q")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        // A publish that overtakes the DISCONNECT on its way to the session is sent to the closing connection: it is
        // then in flight rather than queued (and is sent again on reconnect). Either way the session holds all three.
        await ops.WaitForMetricsAsync(
            s => s["mqtt_messages_queued"] + s["mqtt_messages_inflight"] == 3 && s["mqtt_sessions{state=\"offline\"}"] == 1,
            "three queued messages");

        // Beyond Mqtt:MaxConnections (2 here) a CONNECT is refused with 0x97 quota exceeded, and counted.
        await ops.Broker.ConnectAsync(MqttProtocolVersion.V500, "metrics-second");
        var refused = ops.Broker.NewClient();
        var refusal = await refused.ConnectAsync(ops.Broker.Options(MqttProtocolVersion.V500, "metrics-third").Build());
        Assert.Equal(MqttClientConnectResultCode.QuotaExceeded, refusal.ResultCode);
        var m = await ops.WaitForMetricsAsync(s => s.GetValueOrDefault("mqtt_connects_refused_total{reason=\"QuotaExceeded\"}") == 1, "one refusal");
        Assert.Equal(3, m["mqtt_connects_total"]);
    }
}
