using System.Globalization;
using Xunit.Abstractions;

namespace Broker.Tests.Faults;

/// <summary>
/// The long form, run by cluster-config/fault-injection.sh (skipped unless BROKER_FAULT_MIX=1): a cluster of
/// BROKER_FAULT_NODES nodes (5) takes BROKER_FAULT_ROUNDS (6) faults drawn at random under BROKER_FAULT_SEED (1),
/// each held BROKER_FAULT_HOLD seconds (20): one node partitioned (both ways or inbound only), the cluster split in
/// halves (a minority of two with five nodes), a node cut off from PostgreSQL, a node paused with SIGSTOP, a node
/// killed with SIGKILL and restarted, the whole cluster killed and restarted. Each round is checked like
/// <see cref="FaultSpecs"/>; the rows go to BROKER_FAULT_REPORT. Node 1 (the first seed) is never on the minority
/// side of a partition: restarted while cut off, a first seed forms a cluster of its own (see docs/faults.md).
/// </summary>
[Collection(Name)]
public sealed class FaultMixSpecs(ITestOutputHelper output)
{
    public const string Name = "Fault injection, long mix";

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;

    [FaultMixFact]
    public async Task Random_mix_of_faults_under_a_fixed_seed_loses_nothing_acknowledged()
    {
        var nodes = Setting("BROKER_FAULT_NODES", 5);
        var seed = Setting("BROKER_FAULT_SEED", 1);
        var rounds = Setting("BROKER_FAULT_ROUNDS", 6);
        var hold = TimeSpan.FromSeconds(Setting("BROKER_FAULT_HOLD", 20));
        Assert.True(nodes >= 3, "BROKER_FAULT_NODES must be at least 3");
        var random = new Random(seed);
        var violations = new List<string>();
        await using var cluster = await NamespaceCluster.StartAsync(nodes, NamespaceCluster.ExtraNodeArgs());
        for (var round = 1; round <= rounds; round++)
        {
            await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(120));
            var (name, minority, apply, heal) = Draw(cluster, random);
            output.WriteLine($"round {round}: {name}");
            var run = new FaultRun(cluster, $"{round}. {name}", minority);
            try
            {
                var report = await run.RunAsync(apply, heal, hold, output.WriteLine);
                output.WriteLine(report.Details());
                Record(report.TableRow());
                violations.AddRange(report.Violations().Select(v => $"round {round} ({name}): {v}"));
            }
            catch (Exception e)
            {
                violations.Add($"round {round} ({name}) did not complete: {e.Message.Split('\n')[0]}");
                Record($"| {round}. {name} | did not complete: {e.Message.Split('\n')[0]} |");
                await cluster.Lab.HealAsync();
                foreach (var n in minority)
                {
                    cluster.Resume(n);
                    cluster.Release(n);
                }
            }
        }

        output.WriteLine(string.Join('\n', cluster.Events));
        if (Environment.GetEnvironmentVariable("BROKER_FAULT_LOGS") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            for (var n = 1; n <= nodes; n++)
            {
                await File.WriteAllTextAsync(Path.Combine(dir, $"mix.node{n}.log"), cluster.Log(n, int.MaxValue));
            }
        }

        Assert.True(violations.Count == 0, string.Join('\n', violations));
    }

    private static (string Name, int[] Minority, Func<Task> Apply, Func<Task> Heal) Draw(NamespaceCluster cluster, Random random)
    {
        var count = cluster.Count;
        var all = Enumerable.Range(1, count).ToArray();
        var notFirst = all.Skip(1).ToArray();
        Task Done() => Task.CompletedTask;
        // BROKER_FAULT_ONLY=k draws only fault k (0..6, in the order below) to reproduce one kind again.
        var only = Setting("BROKER_FAULT_ONLY", -1);
        var kind = random.Next(7);
        switch (only >= 0 ? only : kind)
        {
            case 0:
            {
                // BROKER_FAULT_VICTIM=1 partitions the first seed instead (see docs/faults.md: it forms a cluster of its own).
                var n = notFirst[random.Next(notFirst.Length)];
                n = Setting("BROKER_FAULT_VICTIM", n);
                return ($"partition node {n} (both ways)", [n], () => cluster.Lab.CutAsync(n, all.Where(o => o != n)), cluster.Lab.HealAsync);
            }

            case 1:
            {
                var n = notFirst[random.Next(notFirst.Length)];
                return ($"partition node {n} (inbound only)", [n],
                    () => cluster.Lab.CutAsync(n, all.Where(o => o != n), inboundOnly: true), cluster.Lab.HealAsync);
            }

            case 2:
            {
                var minority = notFirst.OrderBy(_ => random.Next()).Take((count - 1) / 2).Order().ToArray();
                var majority = all.Except(minority).ToArray();
                return ($"split {string.Join('+', majority)} from {string.Join('+', minority)}", minority, async () =>
                {
                    foreach (var n in minority)
                    {
                        await cluster.Lab.CutAsync(n, majority);
                    }
                }, cluster.Lab.HealAsync);
            }

            case 3:
            {
                var n = all[random.Next(all.Length)];
                return ($"node {n} cut off from PostgreSQL", [n], () => cluster.Lab.CutServiceAsync(n, cluster.PostgresPort), cluster.Lab.HealAsync);
            }

            case 4:
            {
                // BROKER_FAULT_VICTIM=1 pauses the oldest member (the shard coordinators' node).
                var n = all[random.Next(all.Length)];
                n = Setting("BROKER_FAULT_VICTIM", n);
                return ($"SIGSTOP node {n}, SIGCONT", [n], () =>
                {
                    cluster.Pause(n);
                    return Done();
                }, () =>
                {
                    cluster.Resume(n);
                    return Done();
                });
            }

            case 5:
            {
                var n = all[random.Next(all.Length)];
                return ($"kill -9 node {n}, restart", [n], () => cluster.KillAndHoldAsync(n), () =>
                {
                    cluster.Release(n);
                    return Done();
                });
            }

            default:
                return ("kill -9 every node, restart the cluster", all, async () =>
                {
                    foreach (var n in all)
                    {
                        await cluster.KillAndHoldAsync(n);
                    }
                }, () =>
                {
                    foreach (var n in all)
                    {
                        cluster.Release(n);
                    }

                    return Done();
                });
        }
    }

    private static void Record(string row)
    {
        if (Environment.GetEnvironmentVariable("BROKER_FAULT_REPORT") is { Length: > 0 } path)
        {
            File.AppendAllText(path, row + "\n");
        }
    }
}

/// <summary>A fact that runs only when BROKER_FAULT_MIX=1 (cluster-config/fault-injection.sh sets it).</summary>
public sealed class FaultMixFactAttribute : FactAttribute
{
    public FaultMixFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("BROKER_FAULT_MIX") != "1")
        {
            Skip = "the long fault mix runs by cluster-config/fault-injection.sh (BROKER_FAULT_MIX=1)";
        }
    }
}

[CollectionDefinition(FaultMixSpecs.Name, DisableParallelization = true)]
public sealed class FaultMixCollection
{
}
