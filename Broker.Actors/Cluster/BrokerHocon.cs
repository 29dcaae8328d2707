using System.Text;
using Broker.Configuration;

namespace Broker.Cluster;

/// <summary>
/// The Akka.NET configuration of a broker node. A single node is a one-node cluster: the same sharding, the same
/// routes, so adding nodes adds capacity without a second code path. Every non-default value says why.
/// </summary>
public static class BrokerHocon
{
    public const string SystemName = "broker";

    public static string Build(BrokerOptions options)
    {
        var seeds = new StringBuilder();
        foreach (var seed in options.Cluster.SeedNodes)
        {
            seeds.Append('"').Append(seed).Append("\",");
        }

        return $$"""
        akka {
          loglevel = INFO
          stdout-loglevel = WARNING
          log-dead-letters = 0                    # routes to sessions that just left are normal; do not flood logs
          log-dead-letters-during-shutdown = off
          # The host stops the node (close clients with 0x8B, then leave the cluster); the CLR exit hook must not
          # tear the actor system down underneath it first.
          coordinated-shutdown.run-by-clr-shutdown-hook = off
          actor {
            provider = cluster
            serialize-messages = off
          }
          actor.serializers.broker = "Broker.Persistence.Serialization.BrokerSerializer, Broker.Actors"
          # Every message that crosses nodes and every journal event and snapshot: compact binary, never JSON.
          actor.serialization-bindings {
            "Broker.Persistence.Serialization.IBrokerSerializable, Broker.Actors" = broker
          }
          # Management API queries between nodes (rare, off the message path): JSON of their own, not Newtonsoft.
          actor.serializers.operations = "Broker.Operations.OperationsSerializer, Broker.Actors"
          actor.serialization-bindings {
            "Broker.Operations.IOperationsMessage, Broker.Actors" = operations
          }
          remote {
            dot-netty.tcp {
              hostname = "{{options.Cluster.Hostname}}"
              port = {{options.Cluster.Port}}
            }
          }
          cluster {
            seed-nodes = [{{seeds.ToString().TrimEnd(',')}}]
            # keep-majority split-brain resolver: a minority side downs itself instead of two clusters living on.
            downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
            split-brain-resolver {
              active-strategy = keep-majority
              stable-after = 7s                   # default 20s: failover should complete in seconds
            }
            min-nr-of-members = 1
            sharding {
              state-store-mode = ddata            # coordinator state in ddata (not the journal); remember-entities off
              remember-entities = off
              least-shard-allocation-strategy.rebalance-absolute-limit = 20
            }
            distributed-data {
              notify-subscribers-interval = 100ms # default 500ms: remote wildcard subscriptions appear sooner
            }
          }
        }
        {{Persistence.StorageSetup.Hocon(options)}}
        """;
    }
}
