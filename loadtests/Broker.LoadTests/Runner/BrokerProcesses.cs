using System.Globalization;

namespace Broker.LoadTests.Runner;

/// <summary>
/// The broker's processes, one per node: a single broker, or every node of a cluster the run targets. CPU time and
/// RSS are summed over them, so "broker CPU per delivery" stays comparable between one node and a cluster. When the
/// nodes run in cgroups of their own (--broker-cgroup), CPU time is the sum of the groups' cpuacct.usage instead:
/// that counts every thread the kernel charged to the group, including processes that started and ended meanwhile.
/// </summary>
public sealed class BrokerProcesses
{
    private BrokerProcesses(IReadOnlyList<int> pids, IReadOnlyList<string> cgroups)
    {
        Pids = pids;
        Cgroups = cgroups;
    }

    public IReadOnlyList<int> Pids { get; }

    /// <summary>cgroup v1 cpuacct folders whose cpuacct.usage is the CPU time; empty: the processes' /proc figures.</summary>
    public IReadOnlyList<string> Cgroups { get; }

    /// <summary>
    /// The PIDs given with --broker-pid, else the local process listening on each target's port; null when none is
    /// found (a broker on another host, or one this user may not inspect) and no cgroup was given.
    /// </summary>
    public static BrokerProcesses? Find(RunOptions options)
    {
        var pids = options.BrokerPids.Count > 0
            ? options.BrokerPids.Distinct().ToList()
            : options.Targets.Select(t => ProcessStats.FindListener(t.Port)).OfType<int>().Distinct().ToList();
        return pids.Count == 0 && options.BrokerCgroups.Count == 0 ? null : new BrokerProcesses(pids, options.BrokerCgroups.ToArray());
    }

    /// <summary>User plus system CPU time of every process (or cgroup); null when one of them cannot be read (it exited).</summary>
    public TimeSpan? CpuTime()
    {
        if (Cgroups.Count > 0)
        {
            return CgroupCpuTime();
        }

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

    private TimeSpan? CgroupCpuTime()
    {
        long nanoseconds = 0;
        foreach (var dir in Cgroups)
        {
            try
            {
                nanoseconds += long.Parse(File.ReadAllText(Path.Combine(dir, "cpuacct.usage")).Trim(), CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                return null;
            }
        }

        return TimeSpan.FromTicks(nanoseconds / 100);
    }

    /// <summary>Resident memory of every process together; null when one of them cannot be read, or no PID is known.</summary>
    public long? Rss()
    {
        if (Pids.Count == 0)
        {
            return null;
        }

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
