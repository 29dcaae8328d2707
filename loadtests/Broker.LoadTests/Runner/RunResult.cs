namespace Broker.LoadTests.Runner;

/// <summary>Everything a run reports (serialized as report.json; Markdown and HTML are rendered from it).</summary>
public sealed class RunResult
{
    public string Scenario { get; set; } = "";

    public string Description { get; set; } = "";

    public string CommandLine { get; set; } = "";

    public DateTime StartedUtc { get; set; }

    public string[] Targets { get; set; } = [];

    public string[] Load { get; set; } = [];

    public double WarmUpSeconds { get; set; }

    public double MeasuredSeconds { get; set; }

    public string RateUnit { get; set; } = "msg/s";

    /// <summary>Deliveries (or operations) per second during the measurement.</summary>
    public double Rate { get; set; }

    public long MeasuredCount { get; set; }

    public long LatencyCount { get; set; }

    public double LatencyP50Ms { get; set; }

    public double LatencyP90Ms { get; set; }

    public double LatencyP99Ms { get; set; }

    public double LatencyP999Ms { get; set; }

    public double LatencyMaxMs { get; set; }

    public double LatencyMeanMs { get; set; }

    public QosCounts[] PerQoS { get; set; } = [];

    public long Errors { get; set; }

    public string? LastError { get; set; }

    public int Cores { get; set; }

    public double RunnerCpuSeconds { get; set; }

    /// <summary>Runner CPU over the measurement, in cores (1.0 = one core busy).</summary>
    public double RunnerCores { get; set; }

    /// <summary>The first of <see cref="BrokerPids"/> (kept for readers of older reports).</summary>
    public int? BrokerPid { get; set; }

    /// <summary>Every broker process measured; CPU and RSS figures are their sums.</summary>
    public int[] BrokerPids { get; set; } = [];

    /// <summary>cgroup v1 cpuacct folders the broker CPU was read from (their cpuacct.usage); empty: from the PIDs' /proc.</summary>
    public string[] BrokerCgroups { get; set; } = [];

    public double? BrokerCpuSeconds { get; set; }

    public double? BrokerCores { get; set; }

    /// <summary>Broker CPU microseconds per delivered message (or per operation) during the measurement.</summary>
    public double? BrokerCpuMicrosPerUnit { get; set; }

    public long? BrokerRssStartBytes { get; set; }

    public long? BrokerRssEndBytes { get; set; }

    public Dictionary<string, string> Facts { get; set; } = new();

    public List<string> Warnings { get; set; } = new();

    public List<string> ThresholdFailures { get; set; } = new();

    public List<Sample> Series { get; set; } = new();

    public long TotalLost => PerQoS.Sum(q => q.Lost);

    public long TotalDuplicates => PerQoS.Sum(q => q.Duplicates);
}

/// <summary>One second of the run.</summary>
public sealed record Sample(double Second, string Phase, double SentPerSecond, double ReceivedPerSecond, double OpsPerSecond,
    double? P50Ms, double? P99Ms, double? MaxMs, double RunnerCores, double? BrokerCores, double? BrokerRssMb);
