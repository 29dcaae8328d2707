namespace Broker.LoadTests.Runner;

/// <summary>
/// The broker's processes, one per node: a single broker, or every node of a cluster the run targets. CPU time and
/// RSS are summed over them, so "broker CPU per delivery" stays comparable between one node and a cluster.
/// </summary>
public sealed class BrokerProcesses
{
    private BrokerProcesses(IReadOnlyList<int> pids) => Pids = pids;

    public IReadOnlyList<int> Pids { get; }

    /// <summary>
    /// The PIDs given with --broker-pid, else the local process listening on each target's port; null when none is
    /// found (a broker on another host, or one this user may not inspect).
    /// </summary>
    public static BrokerProcesses? Find(RunOptions options)
    {
        var pids = options.BrokerPids.Count > 0
            ? options.BrokerPids.Distinct().ToList()
            : options.Targets.Select(t => ProcessStats.FindListener(t.Port)).OfType<int>().Distinct().ToList();
        return pids.Count == 0 ? null : new BrokerProcesses(pids);
    }

    /// <summary>User plus system CPU time of every process; null when one of them cannot be read (it exited).</summary>
    public TimeSpan? CpuTime()
    {
        var total = TimeSpan.Zero;
        foreach (var pid in Pids)
        {
            if (ProcessStats.CpuTime(pid) is not { } cpu)
            {
                return null;
            }

            total += cpu;
        }

        return total;
    }

    /// <summary>Resident memory of every process together; null when one of them cannot be read.</summary>
    public long? Rss()
    {
        long total = 0;
        foreach (var pid in Pids)
        {
            if (ProcessStats.Rss(pid) is not { } rss)
            {
                return null;
            }

            total += rss;
        }

        return total;
    }

    public override string ToString() => string.Join(",", Pids);
}
