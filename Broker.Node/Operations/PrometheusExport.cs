using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Prometheus;

namespace Broker.Node.Operations;

/// <summary>
/// The node's <c>/metrics</c>, written by prometheus-net from the instruments of this node's "Broker" meter
/// (<see cref="BrokerMeter"/>): a <see cref="MeterListener"/> limited to that one meter feeds a registry of this node's
/// own (several nodes can run in one process), observable counters as Prometheus counters, observable gauges as
/// gauges, the journal-latency histogram as a histogram with the same buckets, names and tags unchanged. Cluster
/// membership and the shards and entities this node hosts need the actor system, so they are set here at scrape time
/// (the shard regions are asked, with a timeout; a region that does not answer in time has no sample).
/// <para>prometheus-net's own MeterAdapter is not used: it publishes every .NET counter as a Prometheus gauge, and
/// /metrics keeps its types.</para>
/// </summary>
public sealed class PrometheusExport : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";
    private static readonly TimeSpan RegionTimeout = TimeSpan.FromSeconds(2);

    private readonly BrokerServer _server;
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly IMetricFactory _factory;
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Name, string Labels), Collector> _families = new();
    private readonly Gauge _members;
    private readonly Gauge _unreachable;
    private readonly Gauge _shards;
    private readonly Gauge _entities;

    public PrometheusExport(BrokerServer server)
    {
        _server = server;
        _factory = Metrics.WithCustomRegistry(_registry);
        var meter = server.Meter.Meter;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                listener.EnableMeasurementEvents(instrument);
                if (instrument is Histogram<double>)
                {
                    // Recorded without tags: on the page (all zero) before the first observation, as a histogram should be.
                    _families.GetOrAdd((instrument.Name, ""), _ => Create(instrument, []));
                }
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();

        _members = _factory.CreateGauge("broker_cluster_members", "Cluster members as this node sees them, by status.", ["status"]);
        _unreachable = _factory.CreateGauge("broker_cluster_unreachable_members", "Members this node's failure detector marks unreachable.");
        _shards = _factory.CreateGauge("broker_shards", "Shards hosted on this node, by region (absent when the region did not answer in time).", ["region"]);
        _entities = _factory.CreateGauge("broker_entities", "Entities running on this node, by region (absent when the region did not answer in time).", ["region"]);
        _registry.AddBeforeCollectCallback(BeforeCollectAsync);
    }

    /// <summary>Writes the page (Prometheus text format 0.0.4) to <paramref name="body"/>.</summary>
    public Task WriteAsync(Stream body, CancellationToken cancellationToken) =>
        _registry.CollectAndExportAsTextAsync(body, ExpositionFormat.PrometheusText, cancellationToken);

    public void Dispose() => _listener.Dispose();

    private async Task BeforeCollectAsync(CancellationToken cancellationToken)
    {
        _listener.RecordObservableInstruments();
        var state = Akka.Cluster.Cluster.Get(_server.System).State;
        foreach (var status in Enum.GetValues<MemberStatus>())
        {
            _members.WithLabels(status.ToString()).Set(state.Members.Count(x => x.Status == status));
        }

        _unreachable.Set(state.Unreachable.Count);
        var regions = new[] { ("session", _server.Context.SessionRegion), ("topic", _server.Context.TopicRegion) };
        var states = await Task.WhenAll(regions.Select(r => AskRegionAsync(r.Item2))).ConfigureAwait(false);
        for (var i = 0; i < regions.Length; i++)
        {
            var region = regions[i].Item1;
            if (states[i] is { } s)
            {
                _shards.WithLabels(region).Set(s.Shards.Count);
                _entities.WithLabels(region).Set(s.Shards.Sum(x => x.EntityIds.Count));
            }
            else
            {
                _shards.RemoveLabelled(region);
                _entities.RemoveLabelled(region);
            }
        }
    }

    private static async Task<CurrentShardRegionState?> AskRegionAsync(IActorRef region)
    {
        try
        {
            return await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, RegionTimeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>One measurement of the meter: a counter's or gauge's current value, or one histogram observation.</summary>
    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var names = new string[tags.Length];
        var values = new string[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            names[i] = tags[i].Key;
            values[i] = Convert.ToString(tags[i].Value, CultureInfo.InvariantCulture) ?? "";
        }

        Array.Sort(names, values, StringComparer.Ordinal); // a family's label order is fixed; tags come in any order
        var family = _families.GetOrAdd((instrument.Name, string.Join(',', names)), key => Create(instrument, names));
        switch (family)
        {
            case Counter counter when instrument is Counter<long> or Counter<double>:
                counter.WithLabels(values).Inc(value); // a pushed counter's measurement is the increment
                break;
            case Counter counter:
                // An observable counter reads a total that only grows; IncTo never moves a Prometheus counter back.
                counter.WithLabels(values).IncTo(value);
                break;
            case Gauge gauge:
                gauge.WithLabels(values).Set(value);
                break;
            case Histogram histogram:
                histogram.WithLabels(values).Observe(value);
                break;
        }
    }

    private Collector Create(Instrument instrument, string[] labelNames)
    {
        var help = string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description;
        return instrument switch
        {
            ObservableCounter<long> or ObservableCounter<double> or ObservableCounter<int> or Counter<long> or Counter<double> =>
                _factory.CreateCounter(instrument.Name, help, labelNames),
            Histogram<double> => _factory.CreateHistogram(instrument.Name, help, new HistogramConfiguration
            {
                LabelNames = labelNames,
                Buckets = ((Histogram<double>)instrument).Advice?.HistogramBucketBoundaries?.ToArray() ?? Histogram.ExponentialBuckets(0.001, 2, 16),
            }),
            _ => _factory.CreateGauge(instrument.Name, help, labelNames),
        };
    }
}
