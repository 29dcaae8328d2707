using Broker.Cluster;
using Broker.Configuration;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

namespace Broker.Node.Operations;

/// <summary>
/// Pushes the "Broker" meter (<see cref="BrokerMeter"/>) over OTLP/HTTP (protobuf) to <c>Metrics:OtlpEndpoint</c>
/// every <c>Metrics:OtlpIntervalSeconds</c>, with OpenTelemetry's own exporter. Off when the endpoint is empty.
/// </summary>
public static class OtlpMetricsExport
{
    /// <summary>The running provider (dispose it to flush and stop), or null when no endpoint is configured.</summary>
    public static MeterProvider? Start(MetricsOptions options)
    {
        if (options.OtlpEndpoint.Length == 0)
        {
            return null;
        }

        // Set in code, the HTTP exporter takes the endpoint as the full URL of the metrics path.
        var endpoint = new Uri(options.OtlpEndpoint.TrimEnd('/') + "/v1/metrics");
        return Sdk.CreateMeterProviderBuilder()
            .AddMeter(BrokerMeter.MeterName)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = endpoint;
                exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = options.OtlpIntervalSeconds * 1000;
            })
            .Build();
    }
}
