using Akka.Actor;
using Akka.Configuration;
using Broker.Cluster;
using Broker.Tests.Durability;

namespace Broker.Tests.Cluster;

/// <summary>
/// The two witnesses <see cref="EndedNodeDetector"/> needs before it downs a member at once, and its majority rule.
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
        var node = new Address("akka.tcp", "broker", "10.9.8.7", 4053);
        var other = new Address("akka.tcp", "broker", "10.9.8.7", 4054);
        using var system = ActorSystem.Create("presence", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));

        Assert.False(await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)));
        var presence = system.ActorOf(NodePresence.Props(storage, node));
        await WaitForAsync(async () => await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)) == true);
        Assert.False(await NodePresence.IsPresentAsync(storage, other, TimeSpan.FromSeconds(10)));

        await presence.GracefulStop(TimeSpan.FromSeconds(10));
        await WaitForAsync(async () => await NodePresence.IsPresentAsync(storage, node, TimeSpan.FromSeconds(10)) == false);

        // A database that cannot be asked proves nothing: null, never "gone".
        var unreachable = "Host=127.0.0.1;Port=1;Database=none;Username=postgres;Timeout=2";
        Assert.Null(await NodePresence.IsPresentAsync(unreachable, node, TimeSpan.FromSeconds(5)));
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
