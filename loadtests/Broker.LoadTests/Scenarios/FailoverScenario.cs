using System.Diagnostics;
using System.Globalization;
using Broker.LoadTests.Runner;
using Broker.Protocol;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Failover: P QoS 1 publishers and S persistent subscribers (on <c>fo/{run}/#</c>) spread over the cluster's nodes
/// (--targets); --kill-after into the measurement one node is killed with SIGKILL. Every client that loses its node
/// reconnects to the next target (subscribers without clean start, so their sessions continue on a surviving node).
/// Loss counts every message a publisher got a PUBACK for that some subscriber never received. With --start-cluster
/// the scenario runs cluster-config/local-cluster.sh up and down itself, holding /tmp/broker-fixed-ports.lock.
/// </summary>
public sealed class FailoverScenario(ScenarioContext context) : Scenario(context)
{
    private LoadClient?[] _publishers = [];
    private PublisherRecord[] _records = [];
    private LoadClient?[] _subscribers = [];
    private LocalCluster? _cluster;
    private long _reconnects;
    private long _receivedAtKill = -1;
    private int[] _attempt = [];
    private int[] _loggedPublisherMove = [];

    public override string Name => "failover";

    public override string Description =>
        $"{VirtualClients} QoS 1 publishers, {SubscriberCount} persistent subscribers over {Targets.Count} nodes; one node SIGKILLed mid-run";

    public override int VirtualClients => Options.Clients ?? 6;

    public override MqttQoS DefaultQoS => MqttQoS.AtLeastOnce;

    public override TimeSpan DefaultDrain => TimeSpan.FromSeconds(90);

    private int SubscriberCount => Options.Subscribers ?? 3;

    private IReadOnlyList<Target> Targets => _cluster?.Targets ?? Options.Targets;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(200, 200, TimeSpan.FromSeconds(20))];

    private string Prefix => $"fo/{Context.RunId}";

    private Target TargetFor(int index, int attempt) => Targets[(index + attempt) % Targets.Count];

    public override async Task SetupAsync(CancellationToken ct)
    {
        if (Options.StartCluster)
        {
            Context.Log("starting cluster-config/local-cluster.sh (waits for /tmp/broker-fixed-ports.lock)");
            _cluster = await LocalCluster.UpAsync(Context.Log, ct);
        }

        _attempt = new int[VirtualClients + SubscriberCount];
        _loggedPublisherMove = new int[VirtualClients];
        _subscribers = await ConnectManyAsync<LoadClient?>(SubscriberCount, async s =>
        {
            var client = await ConnectSubscriberAsync(s, ct);
            await client.SubscribeAsync($"{Prefix}/#", MqttQoS.AtLeastOnce, ct);
            return client;
        });
        _records = Enumerable.Range(0, VirtualClients).Select(p => Metrics.RegisterPublisher(p, QoSOf(p))).ToArray();
        for (var s = 0; s < SubscriberCount; s++)
        {
            Metrics.ExpectAtSubscriber(s, Enumerable.Range(0, VirtualClients).ToArray());
        }

        _publishers = await ConnectManyAsync<LoadClient?>(VirtualClients, async p => await ConnectPublisherAsync(p, ct));
        Context.Log($"{SubscriberCount} subscribers and {VirtualClients} publishers over {string.Join(", ", Targets)}");
    }

    private Task<LoadClient> ConnectSubscriberAsync(int s, CancellationToken ct) =>
        LoadClient.ConnectAsync(TargetFor(s, _attempt[VirtualClients + s]), $"fo-{Context.RunId}-sub-{s}",
            DefaultSettings with { CleanStart = false, SessionExpiry = 600 }, Metrics, ct, p =>
            {
                Metrics.OnReceived(s, p.Payload.Span);
                return null;
            });

    private Task<LoadClient> ConnectPublisherAsync(int p, CancellationToken ct) =>
        LoadClient.ConnectAsync(TargetFor(p + 1, _attempt[p]), $"fo-{Context.RunId}-pub-{p}", DefaultSettings, Metrics, ct);

    public override async Task IterationAsync(int client, CancellationToken ct)
    {
        var publisher = _publishers[client];
        if (publisher is null || publisher.Closed.IsCancellationRequested)
        {
            _publishers[client] = null;
            await DisposeAllAsync([publisher]);
            _attempt[client]++;
            publisher = _publishers[client] = await ConnectPublisherAsync(client, ct);
            Interlocked.Increment(ref _reconnects);
        }

        if (_attempt[client] > 0 && Interlocked.Exchange(ref _loggedPublisherMove[client], 1) == 0)
        {
            Context.Log($"publisher {client} reconnected to {publisher.Target}");
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, publisher.Closed);
        await publisher.PublishBatchAsync(_records[client], $"{Prefix}/{client}", Batch, Options.PayloadSize, false, linked.Token);
    }

    public override async Task DuringMeasurementAsync(CancellationToken ct)
    {
        var load = Options.Load ?? DefaultLoad;
        var total = load.Aggregate(TimeSpan.Zero, (t, l) => t + l.Duration);
        var end = DateTime.UtcNow + total;
        var watchers = Enumerable.Range(0, SubscriberCount).Select(s => WatchSubscriberAsync(s, end + DrainLimit, ct)).ToArray();
        await Task.Delay(Options.KillAfter ?? total / 3, ct);
        var pid = Options.KillPid ?? _cluster?.NodePid(Options.KillNode) ?? LocalCluster.NodePidFromState(Options.KillNode);
        if (pid is null)
        {
            Metrics.OnError("no node to kill: give --kill-pid or --start-cluster");
        }
        else
        {
            using var victim = Process.GetProcessById(pid.Value);
            victim.Kill(); // SIGKILL on Linux
            _receivedAtKill = Metrics.Received;
            Facts["killed"] = string.Create(CultureInfo.InvariantCulture, $"pid {pid} at {Metrics.Elapsed.TotalSeconds:0.0} s (SIGKILL)");
            Context.Log($"killed node pid {pid} with SIGKILL");
        }

        _ = watchers; // they run until the drain ends
    }

    /// <summary>Reconnects a subscriber to the next node whenever its connection ends, until <paramref name="until"/>.</summary>
    private async Task WatchSubscriberAsync(int s, DateTime until, CancellationToken ct)
    {
        while (DateTime.UtcNow < until && !ct.IsCancellationRequested)
        {
            var current = _subscribers[s];
            if (current is not null && !current.Closed.IsCancellationRequested)
            {
                await Task.Delay(100, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            _attempt[VirtualClients + s]++;
            try
            {
                _subscribers[s] = await ConnectSubscriberAsync(s, ct);
                Interlocked.Increment(ref _reconnects);
                Context.Log($"subscriber {s} reconnected to {_subscribers[s]!.Target} (session present: {_subscribers[s]!.SessionPresent})");
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                Context.Log($"subscriber {s}: reconnect to {TargetFor(s, _attempt[VirtualClients + s])} failed: {e.GetType().Name}: {e.Message}");
                await Task.Delay(500, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    public override async Task BeforeDrainAsync(CancellationToken ct)
    {
        await Task.WhenAll(_publishers.Where(p => p is not null).Select(p => p!.WaitForAcksAsync(TimeSpan.FromSeconds(10))));
        Facts["reconnects"] = Interlocked.Read(ref _reconnects).ToString(CultureInfo.InvariantCulture);
    }

    public override async Task TeardownAsync()
    {
        if (_receivedAtKill >= 0)
        {
            Facts["deliveries after the kill"] = (Metrics.Received - _receivedAtKill).ToString(CultureInfo.InvariantCulture);
        }

        var breakdown = Metrics.LossBreakdown().ToArray();
        if (breakdown.Length > 0)
        {
            Facts["loss by subscriber and publisher"] = string.Join("; ", breakdown);
        }

        Facts["targets at the end (subscribers; publishers)"] = string.Join(",", _subscribers.Select(c => c?.Target ?? "-")) + "; " +
            string.Join(",", _publishers.Select(c => c?.Target ?? "-"));

        await DisposeAllAsync(_publishers);
        await DisposeAllAsync(_subscribers);
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}
