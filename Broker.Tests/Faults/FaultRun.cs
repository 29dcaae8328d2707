using Broker.Protocol;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Faults;

/// <summary>
/// One fault under load on a <see cref="NamespaceCluster"/>, checked in the Jepsen manner. On every node a QoS 1
/// publisher (v5) and a QoS 2 publisher (v3.1.1) send "id|seq" to their own topics, a QoS 1 subscriber (v3.1.1) and a
/// QoS 2 subscriber (v5) with persistent sessions take everything (f/run/#); all subscribe before the first publish,
/// so every subscriber was subscribed when any message was acknowledged. Every client reconnects to any node when
/// cut off. The run warms up, applies the fault, holds it, heals it, waits until the cluster is whole again (nodes
/// that exited restarted by their supervisor), lets the stream go on, stops the publishers and drains. Meanwhile each
/// node's management API is asked twice a second which clients it holds; see <see cref="FaultReport"/> for the checks.
/// </summary>
public sealed class FaultRun
{
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromSeconds(90);
    private readonly NamespaceCluster _cluster;
    private readonly string _run = Guid.NewGuid().ToString("N")[..6];
    private readonly List<HashSet<string>> _ownershipSamples = new();

    public FaultRun(NamespaceCluster cluster, string fault, IReadOnlyCollection<int> minority)
    {
        _cluster = cluster;
        Fault = fault;
        Minority = minority;
        var nodes = cluster.MqttEndPoints;
        for (var n = 1; n <= nodes.Count; n++)
        {
            Publishers.Add(new FaultClient($"p1-n{n}-{_run}", ClientVersion.V500, MqttQoS.AtLeastOnce, n, nodes, cluster.Clock));
            Publishers.Add(new FaultClient($"p2-n{n}-{_run}", ClientVersion.V311, MqttQoS.ExactlyOnce, n, nodes, cluster.Clock));
            Subscribers.Add(new FaultClient($"s1-n{n}-{_run}", ClientVersion.V311, MqttQoS.AtLeastOnce, n, nodes, cluster.Clock));
            Subscribers.Add(new FaultClient($"s2-n{n}-{_run}", ClientVersion.V500, MqttQoS.ExactlyOnce, n, nodes, cluster.Clock));
        }
    }

    public string Fault { get; }

    /// <summary>The nodes the fault cuts off, pauses or kills (the other side is the majority).</summary>
    public IReadOnlyCollection<int> Minority { get; }

    public List<FaultClient> Publishers { get; } = new();

    public List<FaultClient> Subscribers { get; } = new();

    public IEnumerable<FaultClient> All => Publishers.Concat(Subscribers);

    public long FaultAtMs { get; private set; }

    public long HealedAtMs { get; private set; }

    public long WholeAtMs { get; private set; }

    /// <summary>Node each client was connected to when the fault began.</summary>
    public Dictionary<FaultClient, int> NodeAtFault { get; } = new();

    /// <summary>Client ids held by two nodes at once, per sample (empty sets where none).</summary>
    public IReadOnlyList<HashSet<string>> OwnershipSamples => _ownershipSamples;

    public async Task<FaultReport> RunAsync(Func<Task> fault, Func<Task> heal, TimeSpan holdFor, Action<string> log)
    {
        foreach (var subscriber in Subscribers)
        {
            await subscriber.StartAsync($"f/{_run}/#");
        }

        foreach (var publisher in Publishers)
        {
            await publisher.StartAsync("");
        }

        using var stopPublishing = new CancellationTokenSource();
        using var stopReceiving = new CancellationTokenSource();
        using var stopSampling = new CancellationTokenSource();
        var receiving = Subscribers.Select(s => Task.Run(() => s.ReceiveLoopAsync(stopReceiving.Token))).ToList();
        var publishing = Publishers.Select(p => Task.Run(() => p.PublishLoopAsync(_run, stopPublishing.Token))).ToList();
        var sampling = Task.Run(() => SampleOwnershipAsync(stopSampling.Token));
        try
        {
            await WaitForAsync(() => Publishers.All(p => p.Acked.Count >= 20), "20 acknowledged per publisher before the fault");
            FaultAtMs = _cluster.Clock.ElapsedMilliseconds;
            foreach (var client in All)
            {
                NodeAtFault[client] = client.Node;
            }

            await fault();
            log($"{Fault}: applied at +{FaultAtMs / 1000.0:F1} s");
            await Task.Delay(holdFor);
            await heal();
            HealedAtMs = _cluster.Clock.ElapsedMilliseconds;
            log($"{Fault}: healed at +{HealedAtMs / 1000.0:F1} s");
            await _cluster.WaitHealthyAsync(PhaseTimeout);
            WholeAtMs = _cluster.Clock.ElapsedMilliseconds;
            log($"{Fault}: cluster whole again at +{WholeAtMs / 1000.0:F1} s");
            var after = Publishers.ToDictionary(p => p, p => p.Acked.Keys.DefaultIfEmpty(0).Max());
            await WaitForAsync(() => Publishers.All(p => p.Acked.Keys.Count(s => s > after[p]) >= 20), "20 more acknowledged per publisher after healing");
        }
        finally
        {
            await stopPublishing.CancelAsync();
            await Task.WhenAll(publishing).WaitAsync(PhaseTimeout);
        }

        var report = new FaultReport(this, _cluster);
        try
        {
            await WaitForAsync(() => Subscribers.All(s => report.Missing(s).Count == 0), "every acknowledged message delivered");
        }
        catch (TimeoutException e)
        {
            log(e.Message); // the report names what is missing
        }
        finally
        {
            await stopReceiving.CancelAsync();
            await stopSampling.CancelAsync();
            await Task.WhenAll(receiving.Append(sampling)).WaitAsync(PhaseTimeout);
            foreach (var client in All)
            {
                await client.CloseAsync();
            }
        }

        return report;
    }

    /// <summary>
    /// Each client as it sees itself (node, connected, last message) and its session as the cluster reports it (asked
    /// of the first node that answers): printed after the logs when a run fails, so that a stall names its client.
    /// </summary>
    public async Task<string> StateAsync()
    {
        var now = _cluster.Clock.ElapsedMilliseconds;
        var lines = new List<string> { $"===== clients at +{now / 1000.0:F1} s =====" };
        foreach (var client in All)
        {
            var receipts = client.Receipts;
            var acked = client.Acked;
            var last = receipts.Count > 0 ? $"last received at +{receipts[^1].AtMs / 1000.0:F1} s" : "nothing received";
            var mine = Publishers.Contains(client) ? $"{acked.Count} acknowledged, last seq {acked.Keys.DefaultIfEmpty(0).Max()}" : $"{receipts.Count} received, {last}";
            var session = "no node answered";
            for (var n = 1; n <= _cluster.Count; n++)
            {
                session = await _cluster.SessionOfAsync(n, client.Id);
                if (!session.StartsWith("node ", StringComparison.Ordinal))
                {
                    break;
                }
            }

            var connections = string.Join(", ", client.Connections.ToArray().TakeLast(4).Select(c => $"n{c.Node}@{c.AtMs / 1000.0:F1}"));
            var refusals = client.Refusals.Count == 0 ? "none" : $"{client.Refusals.Count} ({string.Join("; ", client.Refusals.ToArray().TakeLast(3))})";
            lines.Add($"{client.Id}: {(client.Connected ? "connected to" : "not connected, last to")} node {client.Node}, {mine}, " +
                $"{client.Problems.Count} problem(s) {string.Join("; ", client.Problems.ToArray().Take(3))}; last connects {connections}; refusals {refusals}; " +
                $"DISCONNECTs received {string.Join(",", client.DisconnectReasons.ToArray().TakeLast(3))}; session: {session}");
        }

        return string.Join('\n', lines);
    }

    private async Task SampleOwnershipAsync(CancellationToken stop)
    {
        var ours = All.Select(c => c.Id).ToHashSet();
        while (!stop.IsCancellationRequested)
        {
            var lists = await Task.WhenAll(Enumerable.Range(1, _cluster.Count).Select(_cluster.ClientsOfAsync));
            var twice = lists.Where(l => l is not null).SelectMany(l => l!.Distinct()).Where(ours.Contains)
                .GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
            lock (_ownershipSamples)
            {
                _ownershipSamples.Add(twice);
            }

            try
            {
                await Task.Delay(500, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + PhaseTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not within {PhaseTimeout.TotalSeconds} s: {what}");
            }

            await Task.Delay(100);
        }
    }
}
