#!/usr/bin/env python3
"""Managed heap per connection, by part, from two `dotnet-gcdump report` outputs (heapstat).

    loadtests/gcdump-per-connection.py <before.gcdump.txt> <after.gcdump.txt> <connections> [top types]

connect-rate writes both files beside its report (broker-before.gcdump.txt, broker-after.gcdump.txt). Each
heapstat row gives an object size, a count and a type; the growth of size x count between the two dumps, divided by
the connections, is grouped into the parts of a connection (first matching pattern wins), then the top types.
"""
import collections, re, sys

ROW = re.compile(r'\s*([\d,]+)\s+([\d,]+)\s+(.*?)\s*(\(Bytes > [^)]*\))?\s+\[[^\]]*\]\s*$')
PARTS = [
    ("Akka, per actor (cell, mailbox, props and deploy, path, watch sets, behaviour stack, stash)",
     r"Entry<Akka.Actor.IActorRef,Akka.Util.Option|Entry<Akka.Actor.IActorRef>\[\]|^SharedDeployProps$|^StateProducer<|LazyStash"),
    ("DotNetty channel and pipeline, .NET socket and its async operations",
     r"DotNetty|DefaultAttribute|HandleImpl|Socket|HeadContext|TailContext|BufferMemoryReceiveOperation|Task<System.Int32>|"
     r"Action<System.Int32,System.Memory|ChannelOutboundBuffer|Mqtt(De|En)coderHandler|ClientChannelHandler|MqttCodecState|"
     r"MqttPacketDecoder|ManualResetEventSlim|DefaultChannel|ChannelPipeline|System.Net.IP(Address|EndPoint)$|RecvByteBufAllocator"),
    ("session state (SessionEntity objects: the clean session, and a guard where one holds the id; queues, windows, journal links)",
     r"Broker.Sessions.(SessionEntity|SessionStorageState|MessageQueue|InflightWindow|PacketIdAllocator|QueueAdmission|AckCollector|LiveQueueGauge|"
     r"ConnectionInfo|AttachSession)|Broker.Persistence.JournalLink|InflightMessage|QueuedMessage|HeldDelivery|SubscriptionOptions|"
     r"Delegation|List<System.Action>|Queue<System.ValueTuple<System.Action|Broker.Routing.RouteBatcher|List<Broker.Routing.RoutePublish>"),
    ("connection actor's own object, its CONNECT packet and clock",
     r"Broker.Sessions.(ClientConnectionActor|ConnectionOccasionalState)|MqttConnectPacket|MqttConnAckPacket|List<Broker.Protocol.Packets.MqttPacket>|"
     r"MqttPacket\[\]|ConnectionClock|ActorTimers"),
    ("node-wide maps (session host, client registry, shards and client id claims, connection set)",
     r"Entry<|ClientIdClaims|^Claim<|ClientInfo|Shard|EntityState|^Active$|VolatileNode|Node<Akka.Actor.IActorRef|EntityTerminated"),
    ("Akka, per actor (cell, mailbox, props and deploy, path, watch sets, behaviour stack, stash)",
     r"Akka\.|Receive|Envelope|Broker.Cluster.Lean|ActivatorProducer|c__DisplayClass|SortedInt32KeyNode|HashSet<Akka|Dictionary<Akka|"
     r"System.Object$|System.Object\[\]|Stack<|^Node$"),
]

def load(path):
    size, count = collections.Counter(), collections.Counter()
    for line in open(path):
        m = ROW.match(line)
        if m:
            k = int(m.group(2).replace(",", ""))
            size[m.group(3)] += int(m.group(1).replace(",", "")) * k
            count[m.group(3)] += k
    return size, count

before, before_n = load(sys.argv[1])
after, after_n = load(sys.argv[2])
n = int(sys.argv[3])
top = int(sys.argv[4]) if len(sys.argv) > 4 else 15
parts, types = collections.Counter(), []
for t in set(before) | set(after):
    d = after[t] - before[t]
    types.append((d, after_n[t] - before_n[t], t))
    parts[next((name for name, pat in PARTS if re.search(pat, t)), "other (strings, arrays)")] += d
print(f"managed heap growth: {sum(parts.values()) / n:,.0f} bytes per connection ({n:,} connections)")
for name, d in parts.most_common():
    print(f"{d / n:8,.0f}  {name}")
print("largest types (bytes and objects per connection):")
for d, c, t in sorted(types, reverse=True)[:top]:
    print(f"{d / n:8,.0f} {c / n:6.2f}  {t[:140]}")
