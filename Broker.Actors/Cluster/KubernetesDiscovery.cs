using Akka.Actor;
using Akka.Configuration;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Dsl;
using Broker.Configuration;

namespace Broker.Cluster;

/// <summary>
/// The alternative to seed nodes (<c>Cluster:Discovery = kubernetes</c>): Akka.Management serves its HTTP endpoint
/// and cluster bootstrap finds the other broker pods through the Kubernetes API (Akka.Discovery.KubernetesApi, pods
/// selected by label). The pods probe each other's management endpoint; once
/// <see cref="KubernetesDiscoveryOptions.RequiredContactPoints"/> are found and none is in a cluster yet, the pod
/// with the lowest address forms it and the others join (an existing cluster is joined directly). Configured here
/// and shown in cluster-config/kubernetes/broker.yaml; it cannot run on a machine without Kubernetes.
/// </summary>
public static class KubernetesDiscovery
{
    public static bool Enabled(BrokerOptions options) => options.Cluster.Discovery == "kubernetes";

    /// <summary>The HOCON of management, bootstrap and discovery; empty with seed nodes.</summary>
    public static string Hocon(BrokerOptions options)
    {
        if (!Enabled(options))
        {
            return "";
        }

        var k = options.Cluster.Kubernetes;
        var podNamespace = string.IsNullOrEmpty(k.PodNamespace) ? "" : $"pod-namespace = \"{k.PodNamespace}\"";
        return $$"""
        akka.management {
          http {
            hostname = "{{options.Cluster.Hostname}}"   # the pod's address, as for remoting
            port = {{k.ManagementPort}}
          }
          cluster.bootstrap {
            contact-point-discovery {
              service-name = "{{k.ServiceName}}"
              discovery-method = kubernetes-api
              # default 2: with a StatefulSet of N replicas, wait for all of them before the first forms the cluster,
              # so that two halves starting at once cannot each form their own.
              required-contact-point-nr = {{k.RequiredContactPoints}}
            }
          }
        }
        akka.discovery {
          method = kubernetes-api
          kubernetes-api {
            pod-label-selector = "{{k.PodLabelSelector}}"
            {{podNamespace}}
          }
        }
        """;
    }

    /// <summary>The reference configuration of the three modules (plain HOCON does not load it by itself).</summary>
    public static Config Fallback(BrokerOptions options) => Enabled(options)
        ? AkkaManagementProvider.DefaultConfiguration()
            .WithFallback(ClusterBootstrap.DefaultConfiguration())
            .WithFallback(Akka.Discovery.KubernetesApi.KubernetesDiscovery.DefaultConfiguration())
        : Config.Empty;

    /// <summary>Starts the management endpoint and cluster bootstrap (the node joins when bootstrap decides).</summary>
    public static async Task StartAsync(ActorSystem system)
    {
        await AkkaManagement.Get(system).Start().ConfigureAwait(false);
        await ClusterBootstrap.Get(system).Start().ConfigureAwait(false);
    }
}
