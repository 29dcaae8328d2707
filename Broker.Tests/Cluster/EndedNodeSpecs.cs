using Akka.Actor;
using Akka.Configuration;
using Broker.Cluster;
using Broker.Tests.Durability;

namespace Broker.Tests.Cluster;

/// <summary>
/// The two witnesses <see cref="EndedNodeDetector"/> needs before it downs a member at once, and its majority rule.
/// (The same presence, marked Up, keeps a restarted first seed from forming a cluster of its own: <see cref="FirstSeed"/>.)
/// The detector itself runs in the failover specs (kill -9: downed within a second) and in the fault specs (a firewall
/// that rejects: left to the split-brain resolver).
/// </summary>
public sealed class EndedNodeSpecs
{
    [Theory]
    [InlineData(3, 2, true)]   // two survivors of three
    [InlineData(3, 1, false)]  // alone of three: the minority leaves it to the resolver
    [InlineData(5, 3, true)]
    [InlineData(5, 2, false)]
    [InlineData(2, 1, false)]  // one of two is no majority
    [InlineData(4, 2, false)]
    public void Only_a_strict_majority_downs_an_ended_member(int members, int reachable, bool mayDown) =>
        Assert.Equal(mayDown, EndedNode.MayDown(members, reachable));

    [Fact]
    public async Task A_node_presence_is_seen_while_its_session_is_open_and_gone_once_it_ends()
    {
        var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        try
        {
            await PresenceAsync(await postgres.CreateDatabaseAsync("presence"));
        }
        finally
        {
            await postgres.DisposeAsync();
        }
    }

    private static async Task PresenceAsync(string storage)
    {
        using var system = ActorSystem.Create("presence", ConfigurationFactory.ParseString("""
            akka.loglevel = WARNING
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
            """));
        var cluster = Akka.Cluster.Cluster.Get(system);
        var node = cluster.SelfAddress;
        var other = new Address("akka.tcp", "broker", "10.9.8.7", 4054);
        Assert.False(await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)));

        // Present from the start; marked Up once the node is an Up member (what a restarting first seed looks for).
        var presence = system.ActorOf(NodePresence.Props(storage, node));
        await WaitForAsync(async () => await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)) == true);
        Assert.Empty((await NodePresence.UpNodesAsync(storage, [node, other], TimeSpan.FromSeconds(10)))!);
        cluster.Join(node);
        await WaitForAsync(async () => (await NodePresence.UpNodesAsync(storage, [node, other], TimeSpan.FromSeconds(10)))?.Count == 1);
        Assert.Equal([node], (await NodePresence.UpNodesAsync(storage, [node, other], TimeSpan.FromSeconds(10)))!);
        Assert.True(await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)));
        Assert.False(await NodePresence.IsPresentAsync(storage, other, TimeSpan.FromSeconds(10)));

        // The process's session ends (here: the actor stops and closes it; kill -9: the kernel closes the socket).
        await presence.GracefulStop(TimeSpan.FromSeconds(10));
        await WaitForAsync(async () => await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)) == false);
        Assert.Empty((await NodePresence.UpNodesAsync(storage, [node, other], TimeSpan.FromSeconds(10)))!);

        // A database that cannot be asked proves nothing: null, never "gone".
        var unreachable = "Host=127.0.0.1;Port=1;Database=none;Username=postgres;Timeout=2";
        Assert.Null(await NodePresence.IsPresentAsync(unreachable, node, TimeSpan.FromSeconds(5)));
        Assert.Null(await NodePresence.UpNodesAsync(unreachable, [node], TimeSpan.FromSeconds(5)));
        await system.Terminate();
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "not within 20 s");
            await Task.Delay(100);
        }
    }
}
