using Broker.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Node.Hosting;

/// <summary>Starts the <see cref="BrokerServer"/> with the host and stops it gracefully on SIGTERM / Ctrl-C.</summary>
public sealed class BrokerHostedService : IHostedService
{
    private readonly BrokerOptions _options;
    private readonly ILogger<BrokerHostedService> _logger;
    private BrokerServer? _server;

    public BrokerHostedService(BrokerOptions options, ILogger<BrokerHostedService> logger)
    {
        _options = options;
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.Node.DataDir);
        _server = await BrokerServer.StartAsync(_options, cancellationToken).ConfigureAwait(false);
        var cluster = Akka.Cluster.Cluster.Get(_server.System);
        _logger.LogInformation(
            "Broker ready: MQTT listening on {Address}:{Port}; cluster member {Member} (seed nodes: {Seeds})",
            _server.MqttEndPoint.Address, _server.MqttEndPoint.Port, cluster.SelfAddress,
            Broker.Cluster.KubernetesDiscovery.Enabled(_options) ? "none, Kubernetes discovery"
                : _options.Cluster.SeedNodes.Count == 0 ? "none, joined itself" : string.Join(", ", _options.Cluster.SeedNodes));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            _logger.LogInformation("Broker stopping");
            await _server.DisposeAsync().ConfigureAwait(false);
            _logger.LogInformation("Broker stopped");
        }
    }
}
