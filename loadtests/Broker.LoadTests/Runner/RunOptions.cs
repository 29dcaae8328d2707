using System.Globalization;
using Broker.Protocol;

namespace Broker.LoadTests.Runner;

/// <summary>The command line of a run: <c>Broker.LoadTests &lt;scenario&gt; [--option value]...</c> (see <see cref="Usage"/>).</summary>
public sealed record RunOptions
{
    public const string Usage = """
        usage: Broker.LoadTests <scenario> [options]
        scenarios: connect-storm, connect-rate, reconnect-storm, fan-in, fan-out, point-to-point, request-response, persistent-sessions, durable,
                   retained-storm, failover   (list: Broker.LoadTests list)
        common options (defaults in brackets; the scenario's own defaults are shown by 'list'):
          --targets H:P,H:P     brokers; virtual clients are spread over them [127.0.0.1:1883]
          --load SIMS           comma-separated: inject:N:T | ramp:A-B:T | constant:K:T [scenario default]
          --warmup T            warm-up with the first simulation's shape before measuring [2s]
          --drain T             after the load, wait at most this long for owed messages [10s; failover 90s]
          --timeout T           hard limit on the whole run [warmup + load + drain + 120s]
          --clients N           publishing virtual clients (connect-storm: connecting clients)
          --subscribers N       subscribing clients
          --qos L               QoS of publishers, a list cycles over them: 0 | 1 | 2 | 0,1,2
          --batch N             messages per iteration of a virtual client [1 with inject, 100 with constant]
          --payload N           payload bytes (at least 20: timestamp, publisher, sequence) [64]
          --window N            unacknowledged QoS 1/2 publishes per client [100]
          --mqtt 3|5            protocol version (request-response always uses 5) [3 = 3.1.1]
          --broker-pid PID,...  broker processes for CPU and RSS, summed (a cluster: every node) [the listeners of the targets' ports]
          --broker-cgroup DIR,...  read broker CPU from these cgroup v1 cpuacct folders (cpuacct.usage, summed) instead of
                                the processes' /proc figures; RSS still comes from the processes
          --report-dir DIR      write report.md, report.html, report.json there [load-reports/<scenario>-<time>]
          --no-report           write no report files
          --no-live             plain progress lines instead of the live table (automatic when output is redirected)
        thresholds (exit code 2 when one fails):
          --max-loss N  --max-duplicates N  --max-p99-ms X  --max-p50-ms X  --min-rate X  --max-errors N
        scenario options:
          --spread cross|same|even  point-to-point with several --targets: where a pair's publisher connects relative to
                                its subscriber (subscriber i on target i): cross = the next target (every pair crosses),
                                same = the same target, even = the next k-th target with k cycling 0..targets-1, so
                                about (targets-1)/targets of the pairs cross [cross]
          --persistent          fan-in, fan-out, point-to-point: every client keeps a persistent session (3.1.1 clean
                                session 0, v5 session expiry 600 s); the run discards them at the end
          --slow-subscribers N  fan-in, fan-out, point-to-point: the first N subscribers read at most --slow-rate
                                messages/s (their socket is read no faster: a slow consumer) [0]
          --slow-rate N         messages/s of a slow subscriber [1000]
          --max-connections N   connect-storm: stop opening at N connections, hold them --hold T [1s];
                                connect-rate, reconnect-storm: the number of devices
          --subscribe           connect-rate: each device subscribes to its own command topic (devices/ID/cmd, QoS 1)
                                right behind its CONNECT and waits for the SUBACK, as a device that takes commands does
          --away T              connect-rate --persistent: how long the created sessions stay offline before they
                                resume (a broker that passivates offline sessions sooner resumes them from storage) [0s]
          --backoff T           reconnect-storm: longest random wait before a device reconnects (and the cap of
                                its doubling back-off after a failed try) [2s]
          --topics N            retained-storm: retained topics stored before the subscribe load [1000]
          --offline T --online T  persistent-sessions: each subscriber's off/on cycle [1s / 2s]
          --kill-after T        failover: SIGKILL a node this long into the measurement [load duration / 3]
          --kill-node N         failover: which node of cluster-config/.run/state to kill [2]
          --start-cluster       failover: run cluster-config/local-cluster.sh up/down (holds /tmp/broker-fixed-ports.lock)
          --kill-pid PID        failover: kill this process instead of a node from the cluster state
        """;

    public required string Scenario { get; init; }

    public IReadOnlyList<Target> Targets { get; init; } = [new Target("127.0.0.1", 1883)];

    public IReadOnlyList<LoadSimulation>? Load { get; init; }

    public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan? Drain { get; init; }

    public TimeSpan? Timeout { get; init; }

    public int? Clients { get; init; }

    public int? Subscribers { get; init; }

    public IReadOnlyList<MqttQoS>? QoS { get; init; }

    public int? Batch { get; init; }

    public int PayloadSize { get; init; } = 64;

    public int Window { get; init; } = 100;

    public MqttProtocolVersion Version { get; init; } = MqttProtocolVersion.V311;

    /// <summary>--broker-pid: the broker's processes (a list for a cluster); empty = the listeners of the targets.</summary>
    public IReadOnlyList<int> BrokerPids { get; init; } = [];

    /// <summary>--broker-cgroup: cgroup v1 cpuacct folders whose cpuacct.usage is the broker's CPU; empty = /proc.</summary>
    public IReadOnlyList<string> BrokerCgroups { get; init; } = [];

    public PairSpread Spread { get; init; } = PairSpread.Cross;

    public bool Persistent { get; init; }

    /// <summary>connect-rate: each device subscribes to its own command topic behind its CONNECT.</summary>
    public bool Subscribe { get; init; }

    /// <summary>fan-in, fan-out, point-to-point: how many subscribers (the first ones) read slowly.</summary>
    public int SlowSubscribers { get; init; }

    /// <summary>Messages per second a slow subscriber reads at most.</summary>
    public int SlowRate { get; init; } = 1000;

    public string? ReportDir { get; init; }

    public bool NoReport { get; init; }

    public bool NoLive { get; init; }

    public long? MaxLoss { get; init; }

    public long? MaxDuplicates { get; init; }

    public double? MaxP99Ms { get; init; }

    public double? MaxP50Ms { get; init; }

    public double? MinRate { get; init; }

    public long? MaxErrors { get; init; }

    public int? MaxConnections { get; init; }

    public TimeSpan Hold { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan Backoff { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan Away { get; init; } = TimeSpan.Zero;

    public int Topics { get; init; } = 1000;

    public TimeSpan Offline { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan Online { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan? KillAfter { get; init; }

    public int KillNode { get; init; } = 2;

    public bool StartCluster { get; init; }

    public int? KillPid { get; init; }

    public static RunOptions Parse(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith('-'))
        {
            throw new ArgumentException("the first argument names the scenario");
        }

        var o = new RunOptions { Scenario = args[0] };
        for (var i = 1; i < args.Length; i++)
        {
            var key = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{key} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Dbl() => double.Parse(Value(), CultureInfo.InvariantCulture);
            TimeSpan Dur() => LoadSimulation.ParseDuration(Value());
            o = key switch
            {
                "--targets" => o with { Targets = Target.ParseList(Value()) },
                "--load" => o with { Load = LoadSimulation.ParseList(Value()) },
                "--warmup" => o with { WarmUp = Dur() },
                "--drain" => o with { Drain = Dur() },
                "--timeout" => o with { Timeout = Dur() },
                "--clients" => o with { Clients = Int() },
                "--subscribers" => o with { Subscribers = Int() },
                "--qos" => o with { QoS = Value().Split(',').Select(q => (MqttQoS)byte.Parse(q, CultureInfo.InvariantCulture)).ToArray() },
                "--batch" => o with { Batch = Int() },
                "--payload" => o with { PayloadSize = Int() },
                "--window" => o with { Window = Int() },
                "--mqtt" => o with { Version = Value() == "5" ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311 },
                "--broker-pid" => o with { BrokerPids = Value().Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray() },
                "--broker-cgroup" => o with { BrokerCgroups = Value().Split(',', StringSplitOptions.RemoveEmptyEntries) },
                "--spread" => o with { Spread = ParseSpread(Value()) },
                "--persistent" => o with { Persistent = true },
                "--subscribe" => o with { Subscribe = true },
                "--slow-subscribers" => o with { SlowSubscribers = Int() },
                "--slow-rate" => o with { SlowRate = Int() },
                "--report-dir" => o with { ReportDir = Value() },
                "--no-report" => o with { NoReport = true },
                "--no-live" => o with { NoLive = true },
                "--max-loss" => o with { MaxLoss = long.Parse(Value(), CultureInfo.InvariantCulture) },
                "--max-duplicates" => o with { MaxDuplicates = long.Parse(Value(), CultureInfo.InvariantCulture) },
                "--max-p99-ms" => o with { MaxP99Ms = Dbl() },
                "--max-p50-ms" => o with { MaxP50Ms = Dbl() },
                "--min-rate" => o with { MinRate = Dbl() },
                "--max-errors" => o with { MaxErrors = long.Parse(Value(), CultureInfo.InvariantCulture) },
                "--max-connections" => o with { MaxConnections = Int() },
                "--hold" => o with { Hold = Dur() },
                "--backoff" => o with { Backoff = Dur() },
                "--away" => o with { Away = Dur() },
                "--topics" => o with { Topics = Int() },
                "--offline" => o with { Offline = Dur() },
                "--online" => o with { Online = Dur() },
                "--kill-after" => o with { KillAfter = Dur() },
                "--kill-node" => o with { KillNode = Int() },
                "--start-cluster" => o with { StartCluster = true },
                "--kill-pid" => o with { KillPid = Int() },
                _ => throw new ArgumentException($"unknown option {key}"),
            };
        }

        foreach (var dir in o.BrokerCgroups)
        {
            if (!File.Exists(Path.Combine(dir, "cpuacct.usage")))
            {
                throw new ArgumentException($"--broker-cgroup: {dir} has no cpuacct.usage (not a cgroup v1 cpuacct folder)");
            }
        }

        if (o.PayloadSize < Payload.HeaderSize)
        {
            throw new ArgumentException($"--payload must be at least {Payload.HeaderSize} bytes");
        }

        return o;
    }

    private static PairSpread ParseSpread(string value) => value switch
    {
        "cross" => PairSpread.Cross,
        "same" => PairSpread.Same,
        "even" => PairSpread.Even,
        _ => throw new ArgumentException($"--spread: '{value}' is not one of cross, same, even"),
    };

    public MqttQoS QoSOf(int client) => QoS is { Count: > 0 } list ? list[client % list.Count] : MqttQoS.AtMostOnce;

    public MqttQoS MaxQoS => QoS is { Count: > 0 } list ? list.Max() : MqttQoS.AtMostOnce;

    public Target TargetOf(int client) => Targets[client % Targets.Count];
}

/// <summary>Where a point-to-point pair's publisher connects relative to its subscriber (see --spread).</summary>
public enum PairSpread
{
    /// <summary>The target after the subscriber's: with two or more targets every message crosses nodes.</summary>
    Cross,

    /// <summary>The subscriber's own target.</summary>
    Same,

    /// <summary>The k-th target after the subscriber's, k cycling over 0..targets-1: about (targets-1)/targets cross.</summary>
    Even,
}
