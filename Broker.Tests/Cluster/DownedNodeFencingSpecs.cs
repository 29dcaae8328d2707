using Broker.Cluster;
using Xunit.Abstractions;

namespace Broker.Tests.Cluster;

/// <summary>
/// A node that is downed (by the others, or by its own split-brain resolver on the losing side) fences itself at once:
/// its session and topic entities stop journaling, routing and delivering (<see cref="BrokerContext.Fenced"/>) before
/// the majority starts their successors after its removal margin, while its own shutdown may take many seconds more.
/// Three in-process nodes on 127.0.0.1; node 1 downs node 3.
/// </summary>
public sealed class DownedNodeFencingSpecs(ITestOutputHelper output) : OwnClusterSpecs("downed_fencing")
{
    [Fact]
    public async Task A_downed_node_stops_its_entities_at_once_and_the_others_do_not()
    {
        var node3 = Cluster.Node(3);
        var address = Akka.Cluster.Cluster.Get(node3.System).SelfAddress;
        Assert.False(node3.Context.Fenced);

        // Awaited: the phase after the one that fences (service-unbind follows before-service-unbind).
        var unbinding = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        Akka.Actor.CoordinatedShutdown.Get(node3.System).AddTask(Akka.Actor.CoordinatedShutdown.PhaseServiceUnbind, "spec-fenced-yet", () =>
        {
            unbinding.TrySetResult(node3.Context.Fenced);
            return Task.FromResult(Akka.Done.Instance);
        });

        Akka.Cluster.Cluster.Get(Cluster.Node(1).System).Down(address);

        Assert.True(await unbinding.Task.WaitAsync(TimeSpan.FromSeconds(30)), "node 3's shutdown went past its first phase unfenced");
        Assert.True(node3.Context.Fenced);

        output.WriteLine($"node 3 fenced; its actor system terminated: {node3.System.WhenTerminated.IsCompleted}");
        Assert.False(Cluster.Node(1).Context.Fenced);
        Assert.False(Cluster.Node(2).Context.Fenced);
    }
}
