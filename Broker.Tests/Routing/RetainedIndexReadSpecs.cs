using Akka.Actor;
using Akka.Configuration;
using Broker.Routing;

namespace Broker.Tests.Routing;

/// <summary>
/// A session entity may start on a node that has just joined (sharding gives it shards at once), before that node has
/// read its index of retained topics (the stored set and every member's replica). A wildcard SUBSCRIBE there asks the
/// node's <see cref="RetainedIndexActor"/> which topics hold a retained message: the lookup must wait for the read
/// instead of answering from the empty index (it did, and the subscriber missed the retained messages).
/// </summary>
public sealed class RetainedIndexReadSpecs : Akka.TestKit.Xunit2.TestKit
{
    public RetainedIndexReadSpecs()
        : base(ConfigurationFactory.ParseString("""
            akka.loglevel = WARNING
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
            """), "retained-index-read")
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
    }

    [Fact]
    public async Task A_wildcard_lookup_asked_before_the_index_was_read_is_answered_from_the_whole_index()
    {
        var read = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var index = Sys.ActorOf(RetainedIndexActor.Props(indexRead: read.Task));

        index.Tell(new FindRetainedTopics("sensors/#", "sensors/#"), TestActor);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // not from the empty index

        // Start-up's read: the stored retained topics (then every member's replica), then the node is synced.
        await index.Ask<ReplicaSynced>(new SeedReplica(["sensors/a", "sensors/b/c", "other/x"]), TimeSpan.FromSeconds(10));
        read.SetResult();

        var found = ExpectMsg<RetainedTopicsFound>(TimeSpan.FromSeconds(10));
        Assert.Equal("sensors/#", found.SubscriptionFilter);
        Assert.Equal(["sensors/a", "sensors/b/c"], found.Topics.Order());

        // From then on lookups are answered at once.
        index.Tell(new FindRetainedTopics("other/+", "other/+"), TestActor);
        Assert.Equal(["other/x"], ExpectMsg<RetainedTopicsFound>(TimeSpan.FromSeconds(10)).Topics);
    }

    [Fact]
    public void Without_a_pending_read_lookups_are_answered_at_once()
    {
        var index = Sys.ActorOf(RetainedIndexActor.Props());
        index.Tell(new FindRetainedTopics("a/#", "a/#"), TestActor);
        Assert.Empty(ExpectMsg<RetainedTopicsFound>(TimeSpan.FromSeconds(10)).Topics);
    }
}
