using System.Runtime.Serialization;
using System.Text.Json;
using Akka.Actor;
using Akka.Serialization;

namespace Broker.Operations;

/// <summary>
/// Carries the management messages (<see cref="IOperationsMessage"/>) between nodes as JSON (System.Text.Json): they
/// are rare and small, never on the message path, and readable in a packet capture. Identifier 4712 is fixed;
/// manifests are part of the wire contract between nodes of different versions: never rename one.
/// </summary>
public sealed class OperationsSerializer : SerializerWithStringManifest
{
    private static readonly Dictionary<string, Type> Types = new()
    {
        ["ops-lc"] = typeof(ListClients),
        ["ops-cl"] = typeof(ClientList),
        ["ops-k"] = typeof(KickClient),
        ["ops-kr"] = typeof(KickResult),
        ["ops-gs"] = typeof(GetSessionInfo),
        ["ops-si"] = typeof(SessionInfo),
        ["ops-pc"] = typeof(Cluster.ProbeCluster),
        ["ops-cp"] = typeof(Cluster.ClusterProbed),
        ["ops-gns"] = typeof(GetNodeStats),
        ["ops-ns"] = typeof(NodeStats),
        ["ops-asr"] = typeof(Cluster.AskStorageReachable),
        ["ops-sr"] = typeof(Cluster.StorageReachability),
    };

    private static readonly Dictionary<Type, string> Manifests = Types.ToDictionary(kv => kv.Value, kv => kv.Key);

    public OperationsSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override int Identifier => 4712;

    public override string Manifest(object o) =>
        Manifests.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new ArgumentException($"{o.GetType()} is not serialized by {nameof(OperationsSerializer)}");

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType());

    public override object FromBinary(byte[] bytes, string manifest) =>
        Types.TryGetValue(manifest, out var type)
            ? JsonSerializer.Deserialize(bytes, type) ?? throw new SerializationException($"Empty {manifest}")
            : throw new SerializationException($"Unknown manifest {manifest} for {nameof(OperationsSerializer)}");
}
