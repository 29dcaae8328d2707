using Akka.Actor;
using Akka.Configuration;
using Broker.Cluster;
using Broker.Operations;

namespace Broker.Tests.Cluster;

/// <summary>
/// The probe a node sends to seeds outside its cluster (<see cref="StrayClusterDetector"/>) and its answer cross nodes
/// through <see cref="OperationsSerializer"/>: both round-trip with their manifests. The detector itself is exercised
/// on real processes by cluster-config/fault-injection.sh (the first seed restarted inside a partition; docs/faults.md).
/// </summary>
public sealed class StrayClusterProbeSpecs
{
    [Fact]
    public async Task Probe_and_answer_round_trip_through_the_operations_serializer()
    {
        using var system = ActorSystem.Create("probe-serialization", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var serializer = new OperationsSerializer((ExtendedActorSystem)system);
        var answer = new ClusterProbed(2, "akka.tcp://broker@10.0.0.2:4053", ["akka.tcp://broker@10.0.0.2:4053", "akka.tcp://broker@10.0.0.3:4053"]);

        var back = (ClusterProbed)serializer.FromBinary(serializer.ToBinary(answer), serializer.Manifest(answer));
        var probe = serializer.FromBinary(serializer.ToBinary(ProbeCluster.Instance), serializer.Manifest(ProbeCluster.Instance));

        Assert.Equal(answer.UpMembers, back.UpMembers);
        Assert.Equal(answer.Node, back.Node);
        Assert.Equal(answer.Members, back.Members);
        Assert.IsType<ProbeCluster>(probe);
        Assert.NotEqual(serializer.Manifest(answer), serializer.Manifest(ProbeCluster.Instance));
        await system.Terminate();
    }
}
