using System.Diagnostics.Metrics;
using Broker.Cluster;
using Broker.Tests.EndToEnd;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Operations;

/// <summary>
/// The node's metrics are System.Diagnostics.Metrics instruments on the meter "Broker", under the names of /metrics,
/// so that dotnet-counters, dotnet-monitor and OpenTelemetry see them; read here with a MeterListener, as those tools do.
/// </summary>
public sealed class MeterSpecs
{
    [Fact]
    public async Task Instruments_on_the_Broker_meter_count_what_clients_did()
    {
        await using var broker = await BrokerHarness.StartAsync();
        var subscriber = await broker.ConnectAsync(MqttProtocolVersion.V500, "meter-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("meter/t");
        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V311, "meter-pub");
        for (var i = 0; i < 3; i++)
        {
            await publisher.PublishAsync("meter/t", "m" + i, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        await received.WaitForAsync(3);
        var values = Collect(broker.Server.Meter.Meter);

        Assert.Equal(BrokerMeter.MeterName, broker.Server.Meter.Meter.Name);
        Assert.Equal(2, values[("mqtt_connections", "")]);
        Assert.Equal(2, values[("mqtt_connects_total", "")]);
        Assert.Equal(3, values[("mqtt_messages_received_total", "qos=1")]);
        Assert.Equal(0, values[("mqtt_messages_received_total", "qos=0")]);
        Assert.Equal(3, values[("mqtt_messages_sent_total", "qos=1")]);
        Assert.Equal(6, values[("mqtt_payload_bytes_received_total", "qos=1")]); // "m0", "m1", "m2"
        Assert.Equal(1, values[("mqtt_subscriptions", "")]);
        Assert.True(values[("mqtt_bytes_received_total", "")] > 0);
        Assert.Equal(0, values[("mqtt_disconnects_total", "reason=client_disconnect")]);

        await publisher.DisconnectAsync(new MQTTnet.MqttClientDisconnectOptions());
        await AwaitAsync(() => Collect(broker.Server.Meter.Meter)[("mqtt_disconnects_total", "reason=client_disconnect")] == 1);
    }

    /// <summary>Every instrument of <paramref name="meter"/> (this node's only): (name, "tag=value") -> value.</summary>
    private static Dictionary<(string Name, string Tags), double> Collect(Meter meter)
    {
        var values = new Dictionary<(string, string), double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var key = string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}"));
            values[(instrument.Name, key)] = value;
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    private static async Task AwaitAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 10 s");
            await Task.Delay(20);
        }
    }
}
