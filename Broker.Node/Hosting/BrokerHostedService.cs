using Broker.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Node.Hosting;

/// <summary>
/// Starts the <see cref="BrokerServer"/> with the host and stops it gracefully on SIGTERM / Ctrl-C. A node that leaves
/// the cluster on its own (downed by the split-brain resolver, quarantined) cannot serve again: its listeners are
/// already closed, readiness turns false, and the process ends with <see cref="RemovedExitCode"/> so that a supervisor
/// (systemd, Kubernetes) starts a fresh one that joins again.
/// </summary>
public sealed class BrokerHostedService : IHostedService
{
    /// <summary>Exit code of a process whose node was removed from the cluster.</summary>
    public const int RemovedExitCode = 3;

    // The graceful stop after a removal is bounded by its own phases; should anything still hold the process (a
    // phase that hangs, a foreground thread), it ends anyway after this.
    private static readonly TimeSpan ExitDeadline = TimeSpan.FromSeconds(45);
    private readonly BrokerOptions _options;
    private readonly ILogger<BrokerHostedService> _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IHostApplicationLifetime _lifetime;
    private BrokerServer? _server;
    private Operations.OperationsHttpServer? _http;
    private OpenTelemetry.Metrics.MeterProvider? _otlp;

    public BrokerHostedService(
        BrokerOptions options, ILogger<BrokerHostedService> logger, ILoggerFactory loggerFactory, IHostApplicationLifetime lifetime)
    {
        _options = options;
        _logger = logger;
        _loggerFactory = loggerFactory;
        _lifetime = lifetime;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.Node.DataDir);
        var tlsOptions = _options.Mqtt.Tls;
        _logger.LogInformation(
            "Broker starting: MQTT on {Address}:{Port}{Tls}; storage: {Storage}; cluster node {ClusterHost}:{ClusterPort}, {Join}",
            _options.Mqtt.Address, _options.Mqtt.Port,
            tlsOptions.Enabled ? $", TLS on {(tlsOptions.Address.Length > 0 ? tlsOptions.Address : _options.Mqtt.Address)}:{tlsOptions.Port}" : "",
            Broker.Persistence.StorageSetup.Describe(_options), _options.Cluster.Hostname, _options.Cluster.Port, JoinDescription());
        if (_options.Metrics.Port > 0)
        {
            // First, so that health probes see "live, not ready" while storage and the cluster come up.
            _http = await Operations.OperationsHttpServer.StartAsync(_options, _loggerFactory).ConfigureAwait(false);
            _logger.LogInformation(
                "Operations HTTP on {Address}:{Port}: /metrics, /health/live, /health/ready{Api}",
                _http.EndPoint.Address, _http.EndPoint.Port,
                _options.Management.Token.Length > 0 ? ", /api (bearer token)" : " (management API off: no Management:Token)");
        }

        _server = await BrokerServer.StartAsync(_options, cancellationToken, AkkaLogBridge.Setup(_loggerFactory)).ConfigureAwait(false);
        _http?.Attach(_server);
        _otlp = Operations.OtlpMetricsExport.Start(_options.Metrics);
        if (_otlp is not null)
        {
            _logger.LogInformation("Metrics pushed by OTLP/HTTP to {Endpoint} every {Interval} s", _options.Metrics.OtlpEndpoint, _options.Metrics.OtlpIntervalSeconds);
        }
        _ = _server.Removed.ContinueWith(t => OnRemoved(t.Result), CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        var cluster = Akka.Cluster.Cluster.Get(_server.System);
        _logger.LogInformation(
            "Broker ready: MQTT listening on {Address}:{Port}{Tls}; cluster member {Member} (seed nodes: {Seeds})",
            _server.MqttEndPoint.Address, _server.MqttEndPoint.Port,
            _server.MqttTlsEndPoint is { } tls ? $", TLS on {tls.Address}:{tls.Port}" : "", cluster.SelfAddress,
            Broker.Cluster.KubernetesDiscovery.Enabled(_options) ? "none, Kubernetes discovery"
                : _options.Cluster.SeedNodes.Count == 0 ? "none, joined itself" : string.Join(", ", _options.Cluster.SeedNodes));
    }

    private string JoinDescription() =>
        Broker.Cluster.KubernetesDiscovery.Enabled(_options) ? "joining by Kubernetes discovery"
            : _options.Cluster.SeedNodes.Count == 0 ? "forming a cluster by itself (no Cluster:SeedNodes)"
            : "joining seed nodes " + string.Join(", ", _options.Cluster.SeedNodes);

    private void OnRemoved(string reason)
    {
        _http?.Detach(stopping: true);
        Environment.ExitCode = RemovedExitCode;
        _logger.LogCritical(
            "Removed from the cluster ({Reason}): MQTT listeners closed, not ready; exiting with code {ExitCode} so that the node is restarted",
            reason, RemovedExitCode);
        var watchdog = new Thread(() =>
        {
            Thread.Sleep(ExitDeadline);
            Console.Error.WriteLine($"Graceful stop after removal did not end within {ExitDeadline.TotalSeconds:F0} s: exiting now");
            Environment.Exit(RemovedExitCode);
        }) { IsBackground = true, Name = "removed-exit-watchdog" };
        watchdog.Start();
        _lifetime.StopApplication();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _otlp?.Dispose(); // a last push while the meter still reads live counters
        if (_server is not null)
        {
            _logger.LogInformation("Broker stopping");
            _http?.Detach(stopping: true);
            await _server.DisposeAsync().ConfigureAwait(false);
            _logger.LogInformation("Broker stopped");
        }

        if (_http is not null)
        {
            await _http.DisposeAsync().ConfigureAwait(false);
        }

    }
}
