using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Serialization;
using Broker.Persistence.Serialization;

namespace Broker.Tests.Cluster;

/// <summary>
/// Records which types each node serializes, and with what. Installed on a running node, it replaces the node's
/// serializer for two bindings with recording wrappers that keep the same identifier and manifest (so the receiving
/// node, which looks serializers up by identifier, still uses the real ones):
/// <list type="bullet">
/// <item><c>System.Object</c> (Akka's fallback, Newtonsoft JSON): every type that reaches it is a message that crossed
/// nodes (or was journaled) without a binding of its own. The cluster specs require this set to stay empty.</item>
/// <item><see cref="IBrokerSerializable"/> (<see cref="BrokerSerializer"/>): the broker's own messages that crossed
/// nodes or were journaled.</item>
/// </list>
/// Local messages are not serialized (<c>serialize-messages = off</c>), so only cross-node traffic and journal writes
/// are seen. Types whose serializer was looked up before <see cref="Install"/> stay cached with the real one: install
/// before the traffic under test.
/// </summary>
public sealed class SerializationWatch
{
    public ConcurrentDictionary<Type, int> ByFallback { get; } = new();

    public ConcurrentDictionary<Type, int> ByBroker { get; } = new();

    public void Install(ActorSystem system)
    {
        var serialization = system.Serialization;
        var fallback = serialization.FindSerializerForType(typeof(object));
        var broker = serialization.FindSerializerForType(typeof(IBrokerSerializable));
        Assert.IsType<BrokerSerializer>(broker);
        serialization.AddSerializationMap(typeof(object), new Recording((ExtendedActorSystem)system, fallback, ByFallback));
        serialization.AddSerializationMap(typeof(IBrokerSerializable), new RecordingWithManifest((ExtendedActorSystem)system, (BrokerSerializer)broker, ByBroker));
    }

    private sealed class Recording(ExtendedActorSystem system, Serializer inner, ConcurrentDictionary<Type, int> seen) : Serializer(system)
    {
        public override int Identifier => inner.Identifier;

        public override bool IncludeManifest => inner.IncludeManifest;

        public override byte[] ToBinary(object obj)
        {
            seen.AddOrUpdate(obj.GetType(), 1, (_, n) => n + 1);
            return inner.ToBinary(obj);
        }

        public override object FromBinary(byte[] bytes, Type type) => inner.FromBinary(bytes, type);
    }

    private sealed class RecordingWithManifest(ExtendedActorSystem system, SerializerWithStringManifest inner, ConcurrentDictionary<Type, int> seen)
        : SerializerWithStringManifest(system)
    {
        public override int Identifier => inner.Identifier;

        public override string Manifest(object o) => inner.Manifest(o);

        public override byte[] ToBinary(object obj)
        {
            seen.AddOrUpdate(obj.GetType(), 1, (_, n) => n + 1);
            if (obj is Broker.Cluster.LinkBatch batch)
            {
                // Each item of a batch between nodes crossed too (serialized by the same serializer, inside the batch).
                foreach (var item in batch.Items)
                {
                    seen.AddOrUpdate(item.Message.GetType(), 1, (_, n) => n + 1);
                }
            }

            return inner.ToBinary(obj);
        }

        public override object FromBinary(byte[] bytes, string manifest) => inner.FromBinary(bytes, manifest);
    }
}
