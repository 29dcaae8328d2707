using System.Text.RegularExpressions;
using Broker.Tests.Cluster;
using Broker.Tests.Interop;
using Xunit.Abstractions;

namespace Broker.Tests.LoadTests;

/// <summary>
/// A small run of <c>loadtests/measure-idle.sh</c>, the idle-CPU measurement: one Broker.Node on a throwaway
/// PostgreSQL (free ports), one short window. It must print a row for the window with the node's CPU and the
/// compilation thread's part, and leave nothing behind: no process it started, not its folder. A bad setting stops
/// it before it starts anything, naming the variable.
/// <para>It runs alone, after the parallel specs, like the other scripts that start clusters of processes.</para>
/// </summary>
[Collection(LocalClusterScriptCollection.Name)]
public sealed partial class IdleScriptSpecs(ITestOutputHelper output)
{
    private static string Script =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Broker.LoadTests.Scenarios.LocalCluster.Script)!)!, "loadtests", "measure-idle.sh");

    [Fact]
    public async Task One_node_one_window_gives_its_row_and_leaves_no_process_or_folder_behind()
    {
        using var script = ExternalProcess.Start("bash", [Script], new Dictionary<string, string?>
        {
            ["NODES"] = "1",
            ["WINDOW"] = "2",
            ["WINDOWS"] = "1",
            ["BUILD"] = "0",
        });
        string? folder = null;
        try
        {
            var code = await script.WaitForExitAsync(TimeSpan.FromMinutes(3));
            output.WriteLine(script.Report());
            Assert.Equal(0, code);

            var header = Assert.Single(script.StdoutLines, l => l.Contains("node(s) ready", StringComparison.Ordinal));
            folder = Folder().Match(header).Groups[1].Value;
            var pids = Pids().Match(header).Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
            Assert.Single(pids);

            // | 0-2 | 1.2 % | 1.20 % | 0.40 % | 0.52 |: the node, the mean, the compilation thread's part, the load.
            var row = Assert.Single(script.StdoutLines, l => l.StartsWith("| 0-2 |", StringComparison.Ordinal));
            var cells = row.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal(5, cells.Length);
            var node = Percent(cells[1]);
            var jit = Percent(cells[3]);
            Assert.InRange(node, 0, 200);
            Assert.InRange(jit, 0, node + 0.01);

            Assert.All(pids, pid => Assert.False(File.Exists($"/proc/{pid}/stat"), $"node pid {pid} still runs"));
            Assert.False(Directory.Exists(folder), $"{folder} is still there");
            Assert.Empty(LiveProcesses.Mentioning(folder));
        }
        finally
        {
            if (!script.HasExited)
            {
                script.Terminate();
                await script.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }

            if (folder is { Length: > 0 })
            {
                foreach (var pid in LiveProcesses.Mentioning(folder))
                {
                    try
                    {
                        System.Diagnostics.Process.GetProcessById(pid).Kill();
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                    {
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData("NODES", "0", "NODES = '0': a node count")]
    [InlineData("WINDOW", "soon", "WINDOW = 'soon': seconds")]
    [InlineData("WINDOWS", "-1", "WINDOWS = '-1'")]
    public async Task A_bad_setting_stops_it_before_it_starts_anything_naming_the_variable(string variable, string value, string message)
    {
        using var script = ExternalProcess.Start("bash", [Script], new Dictionary<string, string?> { [variable] = value, ["BUILD"] = "0" });
        var code = await script.WaitForExitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine(script.Report());
        Assert.Equal(2, code);
        Assert.Contains(message, script.Stderr);
        Assert.DoesNotContain(script.StdoutLines, l => l.Contains("node(s) ready", StringComparison.Ordinal));
    }

    private static double Percent(string cell) =>
        double.Parse(cell.TrimEnd('%', ' '), System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"folder (\S+) \(removed")]
    private static partial Regex Folder();

    [GeneratedRegex(@"pids ([\d ]+);")]
    private static partial Regex Pids();
}
