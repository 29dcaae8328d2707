using Akka.Actor;
using Akka.Configuration;
using Broker.Cluster;
using Broker.Operations;
using Broker.Node.Hosting;
using Microsoft.Extensions.Configuration;

namespace Broker.Tests.Cluster;

/// <summary>
/// When a member that cannot reach the database leaves the cluster (<see cref="StorageWatch"/>): only after
/// Storage:LeaveAfter without a successful probe, and only when another member reaches the database. The watch itself
/// runs in the fault specs: a node cut off from PostgreSQL leaves, and an outage for every node makes none leave.
/// </summary>
public sealed class StorageLeaveRuleSpecs
{
    private static readonly TimeSpan LeaveAfter = TimeSpan.FromSeconds(5);

    [Fact]
    public void A_node_asks_the_others_only_after_LeaveAfter_without_a_successful_probe()
    {
        var rule = new StorageLeaveRule(LeaveAfter, 0);
        Assert.True(rule.Reachable(0));
        rule.Probed(true, 1_000);
        rule.Probed(false, 4_000); // the first failure: unreachable since the last success
        Assert.False(rule.Reachable(4_000));
        Assert.Equal(TimeSpan.FromSeconds(3), rule.UnreachableFor(4_000));
        Assert.False(rule.ShouldAsk(5_999));
        Assert.True(rule.ShouldAsk(6_000));
        rule.Probed(true, 6_500); // back before the answers came: no longer
        Assert.False(rule.ShouldAsk(7_000));
        Assert.True(rule.Reachable(7_000));
        Assert.Equal(TimeSpan.Zero, rule.UnreachableFor(7_000));
    }

    [Fact]
    public void A_probe_that_hangs_counts_like_one_that_failed()
    {
        // Probes run every second: no success for longer than FreshFor means they fail or hang (a cut that drops packets).
        var rule = new StorageLeaveRule(LeaveAfter, 0);
        rule.Probed(true, 1_000);
        Assert.True(rule.Reachable(3_999));
        Assert.False(rule.Reachable(4_000));
        Assert.False(rule.ShouldAsk(5_999));
        Assert.True(rule.ShouldAsk(6_000));
    }

    [Fact]
    public void A_node_whose_probes_never_succeeded_counts_from_its_start()
    {
        var rule = new StorageLeaveRule(LeaveAfter, 10_000);
        rule.Probed(false, 13_000);
        Assert.False(rule.ShouldAsk(14_999));
        Assert.True(rule.ShouldAsk(15_000));
    }

    [Fact]
    public void LeaveAfter_zero_never_asks()
    {
        var rule = new StorageLeaveRule(TimeSpan.Zero, 0);
        rule.Probed(false, 1_000);
        Assert.False(rule.ShouldAsk(1_000_000));
    }

    [Theory]
    [InlineData(new[] { 60_000 }, true)]
    [InlineData(new[] { 0, 5_000 }, true)]   // one member that writes steadily is enough to take the shards
    [InlineData(new[] { 0, 0 }, false)]      // the database is down for everyone: leaving helps nobody
    [InlineData(new[] { 0, 800 }, false)]    // one got it back a moment ago: the end of an outage for everyone
    [InlineData(new int[0], false)]          // nobody answered (cut off from the others too: the resolver's case)
    public void A_node_leaves_only_when_another_member_reaches_the_database_steadily(int[] othersReachableForMs, bool leave) =>
        Assert.Equal(leave, new StorageLeaveRule(LeaveAfter, 0).ShouldLeave(othersReachableForMs.Select(ms => TimeSpan.FromMilliseconds(ms))));

    [Fact]
    public void A_node_reaches_the_database_steadily_from_its_first_success_after_a_gap()
    {
        var rule = new StorageLeaveRule(LeaveAfter, 0);
        rule.Probed(true, 1_000);
        Assert.Equal(TimeSpan.FromSeconds(2), rule.ReachableFor(2_000)); // counted from the start
        rule.Probed(false, 3_000);
        Assert.Equal(TimeSpan.Zero, rule.ReachableFor(3_000));
        rule.Probed(true, 9_000);
        rule.Probed(true, 10_000);
        Assert.Equal(TimeSpan.FromSeconds(1.5), rule.ReachableFor(10_500));
    }

    [Theory]
    [InlineData("1", "Storage:LeaveAfter = 1 is out of range: allowed 0 (never leave) or 2 to 3600 seconds")]
    [InlineData("-1", "Storage:LeaveAfter = -1 is out of range")]
    [InlineData("3601", "Storage:LeaveAfter = 3601 is out of range")]
    [InlineData("soon", "Storage:LeaveAfter = 'soon'")]
    public void A_bad_LeaveAfter_stops_start_up_naming_the_key(string value, string expected)
    {
        var (options, errors) = Load(("Storage:LeaveAfter", value));
        Assert.Null(options);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void LeaveAfter_defaults_to_five_seconds_and_binds_from_environment_style_keys()
    {
        Assert.Equal(5, Load().Options!.Storage.LeaveAfter);
        Assert.Equal(0, Load(("STORAGE:LEAVEAFTER", "0")).Options!.Storage.LeaveAfter);
        Assert.Equal(12, Load(("STORAGE:LEAVEAFTER", "12")).Options!.Storage.LeaveAfter);
    }

    [Fact]
    public async Task The_question_and_its_answer_round_trip_through_the_operations_serializer()
    {
        using var system = ActorSystem.Create("storage-watch-serialization", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
        var serializer = new OperationsSerializer((ExtendedActorSystem)system);
        var answer = new StorageReachability("akka.tcp://broker@10.0.0.3:4053", true, 12_345);
        var back = (StorageReachability)serializer.FromBinary(serializer.ToBinary(answer), serializer.Manifest(answer));
        var ask = serializer.FromBinary(serializer.ToBinary(AskStorageReachable.Instance), serializer.Manifest(AskStorageReachable.Instance));
        Assert.Equal(answer, back);
        Assert.IsType<AskStorageReachable>(ask);
        await system.Terminate();
    }

    private static (Broker.Configuration.BrokerOptions? Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] values) =>
        BrokerConfiguration.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());
}
