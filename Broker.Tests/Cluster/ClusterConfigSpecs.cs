using Akka.Configuration;
using Broker.Cluster;
using Broker.Configuration;

namespace Broker.Tests.Cluster;

/// <summary>
/// The failover timings and the discovery choice as the actor system will see them (the HOCON with its fallbacks),
/// so that a typo in a key silently leaving a default is caught.
/// </summary>
public sealed class ClusterConfigSpecs
{
    private static Config Resolve(BrokerOptions options) =>
        ConfigurationFactory.ParseString(BrokerHocon.Build(options))
            .WithFallback(KubernetesDiscovery.Fallback(options))
            .WithFallback(Akka.Cluster.Sharding.ClusterSharding.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig());

    [Fact]
    public void Failure_detection_SBR_and_sharding_timings_are_tuned_for_failover_in_seconds()
    {
        var config = Resolve(new BrokerOptions());
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.GetTimeSpan("akka.cluster.failure-detector.heartbeat-interval"));
        Assert.Equal(TimeSpan.FromSeconds(2), config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause"));
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(3), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(TimeSpan.FromSeconds(2), config.GetTimeSpan("akka.cluster.down-removal-margin"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), config.GetTimeSpan("akka.cluster.leader-actions-interval"));
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.GetTimeSpan("akka.cluster.gossip-interval"));
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.GetTimeSpan("akka.cluster.sharding.retry-interval"));
        Assert.Equal(TimeSpan.FromSeconds(1), config.GetTimeSpan("akka.cluster.sharding.coordinator-failure-backoff"));
        Assert.Equal(TimeSpan.FromSeconds(10), config.GetTimeSpan("akka.cluster.sharding.handoff-timeout"));
        Assert.Equal(TimeSpan.FromSeconds(1), config.GetTimeSpan("akka.remote.retry-gate-closed-for"));
        Assert.Equal(TimeSpan.FromSeconds(3), config.GetTimeSpan("akka.remote.dot-netty.tcp.connection-timeout"));
        Assert.Equal(TimeSpan.FromSeconds(3), config.GetTimeSpan("akka.remote.handshake-timeout"));
        Assert.False(config.HasPath("akka.management.http.port"));
    }

    [Fact]
    public void Kubernetes_discovery_configures_management_bootstrap_and_the_Kubernetes_API_method()
    {
        var options = new BrokerOptions
        {
            Cluster = new ClusterOptions
            {
                Hostname = "10.0.0.7",
                Discovery = "kubernetes",
                Kubernetes = new KubernetesDiscoveryOptions { ServiceName = "mqtt", RequiredContactPoints = 5, PodNamespace = "iot" },
            },
        };
        var config = Resolve(options);
        Assert.Equal("kubernetes-api", config.GetString("akka.discovery.method"));
        Assert.Equal("kubernetes-api", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
        Assert.Equal("mqtt", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.service-name"));
        Assert.Equal(5, config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr"));
        Assert.Equal("iot", config.GetString("akka.discovery.kubernetes-api.pod-namespace"));
        Assert.Equal("10.0.0.7", config.GetString("akka.management.http.hostname"));
        Assert.Equal(8558, config.GetInt("akka.management.http.port"));
        var discoveryClass = config.GetString("akka.discovery.kubernetes-api.class");
        Assert.NotNull(Type.GetType(discoveryClass));
    }

    [Theory]
    [InlineData("dns")]
    [InlineData("")]
    public void An_unknown_discovery_method_is_refused_with_its_key(string method)
    {
        var errors = BrokerOptionsValidator.Validate(new BrokerOptions { Cluster = new ClusterOptions { Discovery = method } });
        Assert.Contains(errors, e => e.StartsWith("Cluster:Discovery", StringComparison.Ordinal));
    }
}
