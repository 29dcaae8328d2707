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
        # The scheduler's timer wheel wakes every tick even when nothing is due (Akka's default: 10 ms, 100 wakes a
        # second, each waking a pool thread). Nothing in the broker needs timers finer than a few tens of ms (keep
        # alive, retries, rate-limit resumes, heartbeats); no message on its normal path waits on it. Measured idle:
        # one node 2.45 -> 1.68 % of a core, three nodes 2.9-3.6 -> 2.8-2.9 % each, p99 at 1,000 msg/s unchanged.
        akka.scheduler.tick-duration = 33ms
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
              # default off-for-windows (= on here): .NET on Linux turns it into SO_REUSEPORT as well, so a second
              # node could bind this port beside a running one and receive part of its cluster traffic. Off still
              # binds with SO_REUSEADDR alone (.NET's default), so a restart is not blocked by TIME_WAIT.
              tcp-reuse-addr = off
              # default 128000b: a publish to a subscriber on another node crosses as one remoting frame, and Akka
              # drops larger frames ("Discarding oversized payload"). Mqtt:MaxPacketSize plus room for the envelope.
              # Frames are buffered as their bytes arrive, never allocated from this limit.
              maximum-frame-size = {{Math.Max(128_000L, options.Mqtt.MaxPacketSize + (1L << 20))}}b
              # default 15s; bounds an outbound association's TCP connect and, on this transport, its handshake too.
              # An association begun while the peer is cut off (a node probing a seed that is not a member) waits this
              # long whatever happens meanwhile, and while it waits the peer's own association to this node is held
              # back as well. A new process of the cut-off node that joins after the heal then cannot talk to this node
              # for up to 15 s: each marks the other unreachable and the split-brain resolver downs both, a healthy node
              # with them. 3s ends such an attempt before failure detection plus stable-after (5.5 s) can decide; a
              # connect and handshake between cluster nodes takes milliseconds, and a failed one is retried after
              # retry-gate-closed-for.
              connection-timeout = 3s
            }
            handshake-timeout = 3s                # default 15s: the same bound for transports that use it
            # default 5s: after a node died, messages to its address are dropped for this long; a node restarted on
            # the same host:port (whole-cluster restart, a pod rescheduled) should be reachable again sooner.
            retry-gate-closed-for = 1s
          }
          cluster {
            seed-nodes = [{{seeds.ToString().TrimEnd(',')}}]
            # keep-majority split-brain resolver: a minority side downs itself instead of two clusters living on.
            downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
            split-brain-resolver {
              active-strategy = keep-majority
              # default 20s: how long the set of unreachable nodes must stay unchanged before SBR decides. 3s is
              # several gossip rounds (1s each), enough for every survivor to agree on who is unreachable, and keeps
              # failover (detection + this + removal margin + shard restart) within seconds.
              stable-after = 3s
            }
            # default off (= stable-after with SBR): how long after a node was downed its shards and singletons
            # (the shard coordinator) start elsewhere. A minority side downs itself after the same stable-after and
            # stops its entities at once, so 2s keeps two copies of a session from writing one journal while
            # shortening the wait.
            down-removal-margin = 2s
            # Failure detection: a killed node is marked unreachable after roughly pause + interval (~2.5 s) instead
            # of ~4-5 s with the defaults (1s / 3s).
            failure-detector {
              heartbeat-interval = 500ms          # default 1s: a missed heartbeat is noticed sooner
              # default 3s: still four heartbeats of slack, above the GC pauses of this broker (concurrent
              # workstation GC, pauses of milliseconds) and the scheduling jitter of a busy 2-core machine.
              acceptable-heartbeat-pause = 2s
              expected-response-after = 500ms    # default 1s: first heartbeat from a new member expected sooner
            }
            min-nr-of-members = 1
            # default 1s: how often the leader moves members on (a downed member to removed, after which its shards and
            # singletons move). A node whose process ended is downed at once (EndedNodeDetector); its removal should not
            # wait most of a second for the next round. The rounds only compare the gossip state: cheap.
            leader-actions-interval = 250ms
            # default 1s: the removal reaches the other members (the shard coordinator's node among them) on the next
            # gossip round; half the wait for one small message per second more to each member.
            gossip-interval = 500ms
            sharding {
              state-store-mode = ddata            # coordinator state in ddata (not the journal); remember-entities off
              remember-entities = off
              least-shard-allocation-strategy.rebalance-absolute-limit = 20
              # default 2s: how often a region retries registering with the coordinator and asks again where a shard
              # lives for the messages it buffers; after failover the coordinator may have moved, every retry counts.
              retry-interval = 500ms
              # default 5s: a coordinator that failed (its node died) is restarted after this backoff.
              coordinator-failure-backoff = 1s
              # default 60s: a graceful leave should not hang for a minute on one shard that does not stop; the host
              # gives the whole stop 30 s (HostOptions.ShutdownTimeout).
              handoff-timeout = 10s
              # default 10s: a shard that did not start (its journal was not reachable) is retried sooner.
              shard-failure-backoff = 2s
            }
            singleton {
              # default 1s: the shard coordinator singleton is handed over to the next oldest node sooner.
              hand-over-retry-interval = 500ms
            }
            distributed-data {
              notify-subscribers-interval = 100ms # default 500ms: remote wildcard subscriptions appear sooner
            }
          }
        }
        # The mailbox of the per-client actors (connection, session) and of topic entities: small while idle.
        broker.lean-mailbox.mailbox-type = "Broker.Cluster.LeanMailbox, Broker.Actors"
        # Connection actors run on their channel's DotNetty event loop (Transport/EventLoopDispatcher.cs): no thread
        # hand-off between the socket and the actor, either way. throughput as Akka's default dispatcher (how many
        # messages one actor handles before the loop turns to its other channels and actors).
        broker.event-loop-dispatcher {
          type = "Broker.Transport.EventLoopDispatcherConfigurator, Broker.Actors"
          throughput = 30
        }
        {{Persistence.StorageSetup.Hocon(options)}}
        {{KubernetesDiscovery.Hocon(options)}}
        """;
    }
}
