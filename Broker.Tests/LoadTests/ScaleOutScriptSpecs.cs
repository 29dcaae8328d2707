using System.Text.RegularExpressions;
using Broker.Tests.Cluster;
using Broker.Tests.Interop;
using Xunit.Abstractions;

namespace Broker.Tests.LoadTests;

/// <summary>
/// A small run of <c>loadtests/measure-scaleout.sh</c>, the scale-out measurement: two capped Broker.Node processes on
/// one throwaway PostgreSQL (free ports, its own output folder), a few seconds per QoS mode. It must print its table
/// with a row per mode that delivered messages, and leave nothing behind: no process it started (nodes, PostgreSQL,
/// the load runner), no cgroup it created; also when it is stopped by SIGTERM in the middle of a run. The cgroup part
/// (each node capped in a cgroup v1 cpu group, CPU read from its cpuacct group) runs wherever the cgroup v1 cpu and
/// cpuacct controllers are mounted (CI machines run as root with them); only where they are not does the script run
/// with CGROUPS=off and the cgroup assertions are skipped, saying so.
/// <para>It runs alone, after the parallel specs, like the other scripts that start clusters of processes.</para>
/// </summary>
[Collection(LocalClusterScriptCollection.Name)]
public sealed partial class ScaleOutScriptSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan ScriptLimit = TimeSpan.FromMinutes(4);

    private static string Script =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Broker.LoadTests.Scenarios.LocalCluster.Script)!)!, "loadtests", "measure-scaleout.sh");

    /// <summary>Both cgroup v1 controllers the script uses are mounted (their mount points listed in /proc/self/mounts).</summary>
    private static bool CgroupsMounted =>
        File.ReadLines("/proc/self/mounts").Select(l => l.Split(' ')).Where(f => f.Length > 3 && f[2] == "cgroup")
            .SelectMany(f => f[3].Split(',')).Intersect(["cpu", "cpuacct"]).Count() == 2;

    /// <summary>
    /// A fresh folder name for the run, created by the script (not by CreateTempSubdirectory, whose mode 0700 would
    /// keep PostgreSQL, running as its own user, out of its data folder inside).
    /// </summary>
    private static string OutDir() => Path.Combine(Path.GetTempPath(), "scaleout-spec-" + Guid.NewGuid().ToString("N")[..10]);

    private static Dictionary<string, string?> ScriptEnvironment(string outDir, string nodes) => new()
    {
        ["NODES"] = nodes,
        ["PAIRS"] = "10",
        ["DURATION"] = "2",
        ["WARMUP"] = "1",
        ["DRAIN"] = "2",
        ["SETTLE_MAX"] = "3",
        ["BUILD"] = "0",
        ["CGROUPS"] = CgroupsMounted ? "on" : "off",
        ["OUT"] = outDir,
    };

    [Fact]
    public async Task Two_capped_nodes_give_a_row_per_QoS_with_deliveries_and_leave_no_process_or_cgroup_behind()
    {
        var outDir = OutDir();
        using var script = ExternalProcess.Start("bash", [Script], ScriptEnvironment(outDir, "2"));
        try
        {
            var code = await script.WaitForExitAsync(ScriptLimit);
            output.WriteLine(script.Report());
            Assert.True(code == 0, $"exit code {code}");

            static string[] Cells(string line) => line.Split('|').Select(c => c.Trim()).ToArray();
            var header = Cells(Assert.Single(script.StdoutLines, l => l.StartsWith("| nodes | QoS |", StringComparison.Ordinal)));
            // A column by its whole name, else by the start of its name ("run" is not "runner cores").
            int Column(string name) => Array.IndexOf(header, name) is >= 0 and var i ? i
                : Array.FindIndex(header, h => h.StartsWith(name, StringComparison.Ordinal)) is >= 0 and var j ? j
                : throw new Xunit.Sdk.XunitException($"no column '{name}' in the table");
            var rows = script.StdoutLines.Where(l => TableRow().IsMatch(l)).Select(Cells).ToList();
            Assert.Equal(["0", "1 clean", "1 persistent"], rows.Select(r => r[Column("QoS")]));
            foreach (var row in rows)
            {
                var what = $"QoS {row[Column("QoS")]}: {string.Join(" | ", row)}";
                Assert.Equal("2", row[Column("nodes")]);
                Assert.True(Number(row[Column("delivered msg/s")]) > 0, $"nothing delivered: {what}");
                Assert.True(Number(row[Column("broker CPU-s per 100k")]) > 0, $"no broker CPU: {what}");
                // Pairs spread evenly over two nodes: about every second one crosses.
                Assert.Matches("^[456] of 10$", row[Column("pairs crossing")]);
                Assert.Equal("ok", row[Column("run")]);
                if (CgroupsMounted)
                {
                    // The caps hold: the nodes together used at most their 2 x 0.4 core (the kernel's quota; a little over
                    // 100 % is the edge of a 100 ms quota period at the ends of a 2 s measurement).
                    Assert.InRange(Number(row[Column("node CPU used")].TrimEnd('%', ' ')), 1, 115);
                    Assert.True(Number(row[Column("msg/s at full caps")]) > 0, $"no rate at full caps: {what}");
                }
            }

            AssertEverythingGone(script, outDir, expectedNodes: 2);
        }
        finally
        {
            await SweepAsync(script, outDir);
        }
    }

    [Fact]
    public async Task Stopped_by_SIGTERM_while_measuring_it_stops_what_it_started_and_removes_its_cgroups()
    {
        var outDir = OutDir();
        using var script = ExternalProcess.Start("bash", [Script], ScriptEnvironment(outDir, "1"));
        try
        {
            // "settled" comes right before the runner starts: a moment later the runner, the node and PostgreSQL run.
            await script.WaitForLineAsync(l => l.Contains("settled after", StringComparison.Ordinal) || l.Contains("still busy", StringComparison.Ordinal), ScriptLimit);
            await Task.Delay(1500);
            Assert.True(LiveProcesses.Mentioning(outDir).Count >= 3, "expected the runner, the node and PostgreSQL to be running");
            script.Terminate();
            var code = await script.WaitForExitAsync(TimeSpan.FromSeconds(90));
            output.WriteLine(script.Report());
            Assert.Equal(143, code);
            AssertEverythingGone(script, outDir, expectedNodes: 1);
        }
        finally
        {
            await SweepAsync(script, outDir);
        }
    }

    [Theory]
    [InlineData("RATE", "0", "RATE = '0': batches per second")]
    [InlineData("RATE", "fast", "RATE = 'fast': batches per second")]
    [InlineData("IDLE_FIRST", "-5", "IDLE_FIRST = '-5': seconds")]
    public async Task A_bad_rate_or_idle_time_stops_it_before_it_starts_anything_naming_the_variable(string variable, string value, string message)
    {
        var outDir = OutDir();
        var environment = ScriptEnvironment(outDir, "1");
        environment[variable] = value;
        using var script = ExternalProcess.Start("bash", [Script], environment);
        var code = await script.WaitForExitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine(script.Report());
        Assert.Equal(2, code);
        Assert.Contains(message, script.Stderr);
        Assert.False(Directory.Exists(outDir), "it created its output folder before checking its settings");
    }

    private void AssertEverythingGone(ExternalProcess script, string outDir, int expectedNodes)
    {
        var pids = script.StdoutLines.SelectMany(l => PidMention().Matches(l)).Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.True(pids.Count == expectedNodes + 1, $"expected {expectedNodes} node PIDs and PostgreSQL's, found {pids.Count}");
        Assert.All(pids, pid => Assert.False(LiveProcesses.IsRunning(pid), $"pid {pid} still runs after the script ended"));
        Assert.Empty(LiveProcesses.Mentioning(outDir));

        var created = script.StdoutLines.Where(l => l.StartsWith("created cgroup ", StringComparison.Ordinal)).Select(l => l["created cgroup ".Length..]).ToList();
        if (!CgroupsMounted)
        {
            output.WriteLine("cgroup v1 cpu/cpuacct not mounted here: ran with CGROUPS=off, cgroup checks skipped");
            return;
        }

        // A cpu group and a cpuacct group per node (one group when the two controllers share a mount).
        Assert.True(created.Count >= expectedNodes, $"{created.Count} cgroups created for {expectedNodes} node(s)");
        Assert.All(created, g => Assert.False(Directory.Exists(g), $"cgroup {g} is still there"));
        Assert.All(created, g => Assert.Contains($"removed cgroup {g}", script.StdoutLines));
    }

    /// <summary>Whatever the script did not clean up (it failed or overran): stopped here, by PID, so CI stays clean.</summary>
    private static async Task SweepAsync(ExternalProcess script, string outDir)
    {
        if (!script.HasExited)
        {
            script.Terminate();
            await script.WaitForExitAsync(TimeSpan.FromSeconds(90));
        }

        foreach (var pid in LiveProcesses.Mentioning(outDir))
        {
            try
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
            }
        }

        foreach (var g in script.StdoutLines.Where(l => l.StartsWith("created cgroup ", StringComparison.Ordinal)).Select(l => l["created cgroup ".Length..]))
        {
            try
            {
                Directory.Delete(g);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        try
        {
            Directory.Delete(outDir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static double Number(string cell) => double.Parse(cell.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\| \d+ \| (0|1 clean|1 persistent) \|")]
    private static partial Regex TableRow();

    [GeneratedRegex(@"\bpid (\d+)\b")]
    private static partial Regex PidMention();
}
