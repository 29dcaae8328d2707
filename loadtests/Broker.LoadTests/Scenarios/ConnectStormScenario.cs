using System.Diagnostics;
using System.Globalization;
using Broker.LoadTests.Runner;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Connect storm: each iteration opens one more clean-session connection (CONNECT to CONNACK is the latency) and
/// leaves it idle, until --max-connections are open. After the load the connections are held for --hold, then the
/// broker's RSS growth over the open connections gives its memory per idle connection.
/// </summary>
public sealed class ConnectStormScenario(ScenarioContext context) : Scenario(context)
{
    private readonly List<LoadClient> _open = new();
    private long? _rssBefore;
    private BrokerProcesses? _broker;
    private int _attempts;

    public override string Name => "connect-storm";

    public override string Description => $"clean-session clients connect and stay idle, up to {MaxConnections:N0} connections";

    public override bool CountsOperations => true;

    public override string RateUnit => "connects/s";

    public override int VirtualClients => Options.Clients ?? 20;

    private int MaxConnections => Options.MaxConnections ?? 10_000;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(200, 200, TimeSpan.FromSeconds(5))];

    public override Task SetupAsync(CancellationToken ct)
    {
        _broker = BrokerProcesses.Find(Options);
        _rssBefore = _broker?.Rss();
        return Task.CompletedTask;
    }

    public override async Task IterationAsync(int client, CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _attempts) - 1;
        if (n >= MaxConnections)
        {
            await Task.Delay(5, ct);
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var connection = await ConnectAsync(n, $"cs-{Context.RunId}-{n}", ct, DefaultSettings with { ReadBufferSize = 512 });
        Metrics.OnOperation((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        lock (_open)
        {
            _open.Add(connection);
        }
    }

    public override async Task BeforeDrainAsync(CancellationToken ct)
    {
        await Task.Delay(Options.Hold, ct);
        int open;
        lock (_open)
        {
            open = _open.Count(c => !c.Closed.IsCancellationRequested);
        }

        var inv = CultureInfo.InvariantCulture;
        Facts["connections open after hold"] = open.ToString("N0", inv);
        if (_broker?.Rss() is { } rss && _rssBefore is { } before)
        {
            Facts["broker RSS before / with the connections"] = string.Create(inv, $"{before / 1048576.0:0.0} / {rss / 1048576.0:0.0} MB");
            if (open > 0)
            {
                Facts["broker RSS per idle connection"] = string.Create(inv, $"{(rss - before) / 1024.0 / open:0.00} KB");
                Facts["rss_per_connection_bytes"] = ((rss - before) / open).ToString(inv);
            }
        }
    }

    public override async Task TeardownAsync()
    {
        LoadClient[] all;
        lock (_open)
        {
            all = _open.ToArray();
        }

        await ConnectManyAsync(all.Length, async i =>
        {
            await DisposeAllAsync([all[i]]);
            return 0;
        }, 64);
    }
}
