using Xunit.Abstractions;

namespace Broker.Tests.Faults;

/// <summary>
/// The cluster's promises under the faults that break clustered brokers in the field, each in a short form (a few
/// seconds of fault) on three Broker.Node processes in network namespaces (<see cref="NamespaceCluster"/>), one after
/// another on the same cluster, under a QoS 1 + QoS 2 load checked by <see cref="FaultReport"/>: nothing acknowledged
/// lost, QoS 2 exactly once, per-publisher order, one owner per client id. Each spec prints its line of the results
/// table (docs/faults.md; cluster-config/fault-injection.sh runs the longer form). Needs root (CI runs as root).
/// </summary>
[Collection(FaultClusterCollection.Name)]
public sealed class FaultSpecs(FaultClusterFixture fixture, ITestOutputHelper output)
{
    // Longer than failure detection (~2.5 s) + stable-after (3 s): the split-brain resolver decides within it.
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(7);

    private NamespaceCluster Cluster => fixture.Cluster;

    [Fact]
    public Task Partition_of_one_node_both_ways() =>
        RunAsync("partition node 3 (both ways)", [3], () => Cluster.Lab.CutAsync(3, [1, 2]), Cluster.Lab.HealAsync, removed: true);

    [Fact]
    public Task Partition_of_one_node_one_way() =>
        RunAsync("partition node 3 (inbound only)", [3], () => Cluster.Lab.CutAsync(3, [1, 2], inboundOnly: true), Cluster.Lab.HealAsync,
            removed: true);

    // A firewall that rejects what the others send to node 3 makes its remoting port look closed to them ("connection
    // refused"), as if its process had ended; its database session is still open, so the majority leaves it to the
    // failure detector and the split-brain resolver instead of downing it at once beside its live sessions. (Rejecting
    // both ways would also swallow the rejections: the others would see silence.)
    [Fact]
    public async Task Partition_of_one_node_by_a_rejecting_firewall()
    {
        await RunAsync("partition node 3 (inbound only, REJECT)", [3], () => Cluster.Lab.CutAsync(3, [1, 2], inboundOnly: true, reject: true),
            Cluster.Lab.HealAsync, removed: true);
        var node3 = $"@{Cluster.Lab.Address(3)}:";
        var majority = (Cluster.Log(1, int.MaxValue) + "\n" + Cluster.Log(2, int.MaxValue)).Split('\n').Where(l => l.Contains(node3)).ToList();
        Assert.Contains(majority, l => l.Contains("refuses remoting connections but its database session is still open"));
        Assert.DoesNotContain(majority, l => l.Contains("has ended (its remoting port refused"));
    }

    // The others still reach the database: after Storage:LeaveAfter (5 s) the node leaves the cluster, its shards move
    // to them, and its supervisor restarts it (StorageWatch). Held 9 s so that it leaves while still cut off.
    [Fact]
    public async Task Node_cut_off_from_PostgreSQL_only()
    {
        await RunAsync("node 2 cut off from PostgreSQL", [2], () => Cluster.Lab.CutServiceAsync(2, Cluster.PostgresPort), Cluster.Lab.HealAsync,
            removed: true, hold: TimeSpan.FromSeconds(9));
        Assert.Contains("Storage unreachable from this node for", Cluster.Log(2, int.MaxValue));
    }

    // The database down for every node: leaving would help nobody (no member could take the shards), so none leaves,
    // and the stream goes on once it is back. Held longer than Storage:LeaveAfter plus the question to the others.
    [Fact]
    public async Task PostgreSQL_outage_for_every_node_makes_none_leave()
    {
        var run = await RunAsync("PostgreSQL cut off from every node", [1, 2, 3], async () =>
        {
            for (var n = 1; n <= 3; n++)
            {
                await Cluster.Lab.CutServiceAsync(n, Cluster.PostgresPort);
            }
        }, Cluster.Lab.HealAsync, hold: TimeSpan.FromSeconds(10));
        for (var n = 1; n <= 3; n++)
        {
            Assert.DoesNotContain(Cluster.EventsOf(n, run.FaultAtMs), e => e.What.StartsWith("exited", StringComparison.Ordinal));
            Assert.Contains("none reaches it: the database is down for the cluster", Cluster.Log(n, int.MaxValue));
        }
    }

    [Fact]
    public Task Pause_past_the_failure_detector_then_resume() =>
        RunAsync("SIGSTOP node 2, SIGCONT", [2], () =>
        {
            Cluster.Pause(2);
            return Task.CompletedTask;
        }, () =>
        {
            Cluster.Resume(2);
            return Task.CompletedTask;
        }, removed: true);

    [Fact]
    public Task Kill_9_and_restart() =>
        RunAsync("kill -9 node 1, restart", [1], () => Cluster.KillAndHoldAsync(1), () =>
        {
            Cluster.Release(1);
            return Task.CompletedTask;
        });

    /// <param name="removed">
    /// The faulted node must be downed by the majority and, as the supervisor sees it, exit with code 3 (then it is
    /// restarted and joins again before the run ends).
    /// </param>
    private async Task<FaultRun> RunAsync(string fault, int[] minority, Func<Task> apply, Func<Task> heal, bool removed = false,
        TimeSpan? hold = null)
    {
        await Cluster.WaitHealthyAsync(TimeSpan.FromSeconds(90)); // a previous spec may have left a node restarting
        var run = new FaultRun(Cluster, fault, minority);
        FaultReport report;
        try
        {
            report = await run.RunAsync(apply, heal, hold ?? Hold, output.WriteLine);
        }
        catch
        {
            await Cluster.Lab.HealAsync();
            Cluster.Resume(minority[0]);
            Cluster.Release(minority[0]);
            DumpLogs();
            output.WriteLine(await run.StateAsync());
            await KeepLogsAsync(fault);
            throw;
        }

        output.WriteLine(FaultReport.TableHeader);
        output.WriteLine(report.Details());
        output.WriteLine(string.Join('\n', Cluster.Events));
        fixture.Record(report.TableRow());
        var violations = report.Violations();
        if (violations.Count > 0)
        {
            DumpLogs();
            output.WriteLine(await run.StateAsync());
        }

        await KeepLogsAsync(fault);

        Assert.True(violations.Count == 0, string.Join('\n', violations));
        Assert.Equal(0, report.Lost);
        Assert.Equal(0, report.Qos2Duplicates);
        Assert.True(report.Acknowledged > 0, "nothing was acknowledged");
        if (removed)
        {
            Assert.Contains(Cluster.EventsOf(minority[0], run.FaultAtMs), e => e.AtMs <= run.WholeAtMs && e.What == "exited with 3");
        }

        return run;
    }

    /// <summary>With BROKER_FAULT_LOGS=dir, every node's whole log of the run is written there.</summary>
    private async Task KeepLogsAsync(string fault)
    {
        if (Environment.GetEnvironmentVariable("BROKER_FAULT_LOGS") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            for (var n = 1; n <= Cluster.Count; n++)
            {
                await File.WriteAllTextAsync(Path.Combine(dir, $"{fault.Replace(' ', '_').Replace(',', '_')}.node{n}.log"), Cluster.Log(n, int.MaxValue));
            }
        }
    }

    private void DumpLogs()
    {
        for (var n = 1; n <= Cluster.Count; n++)
        {
            output.WriteLine($"===== node {n} =====\n{Cluster.Log(n)}");
        }
    }
}

/// <summary>One three-node namespace cluster for all fault specs (they run one after another).</summary>
public sealed class FaultClusterFixture : IAsyncLifetime
{
    private readonly List<string> _rows = new();
    private NamespaceCluster? _cluster;

    public NamespaceCluster Cluster => _cluster ?? throw new InvalidOperationException(NetworkLab.Unavailable() ?? "cluster did not start");

    /// <summary>Keeps a results-table row; with BROKER_FAULT_REPORT=path the rows are appended to that file.</summary>
    public void Record(string row)
    {
        lock (_rows)
        {
            _rows.Add(row);
            if (Environment.GetEnvironmentVariable("BROKER_FAULT_REPORT") is { Length: > 0 } path)
            {
                File.AppendAllText(path, row + "\n");
            }
        }
    }

    public async Task InitializeAsync()
    {
        if (NetworkLab.Unavailable() is { } why)
        {
            throw new InvalidOperationException(why);
        }

        _cluster = await NamespaceCluster.StartAsync(3, NamespaceCluster.ExtraNodeArgs());
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class FaultClusterCollection : ICollectionFixture<FaultClusterFixture>
{
    public const string Name = "Fault injection (network namespaces)";
}
