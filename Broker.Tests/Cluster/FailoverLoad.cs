using System.Diagnostics;
using System.Text;
using Broker.Protocol;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>
/// The load a failover spec runs on a three-node <see cref="ProcessCluster"/>: on every node a QoS 1 publisher (v5),
/// a QoS 2 publisher (v3.1.1), a QoS 1 subscriber (v3.1.1, clean session 0) and a QoS 2 subscriber (v5, session
/// expiry), all persistent sessions; every subscriber's filter matches every publisher. The publishers run a steady
/// stream; <see cref="RunAsync"/> applies the fault (kill or stop a node) once each publisher has a history, waits
/// until every client is resumed, lets the stream run on a little, stops the publishers and lets the subscribers
/// drain until everything acknowledged arrived (bounded). <see cref="Verify"/> then checks the promise.
/// </summary>
public sealed class FailoverLoad
{
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromSeconds(60);
    private readonly string _run = Guid.NewGuid().ToString("N")[..6];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<FailoverClient, int?> _inFlightAtFault = new();
    private long? _faultAtMs;

    public FailoverLoad(IReadOnlyList<int> ports)
    {
        for (var n = 1; n <= ports.Count; n++)
        {
            Publishers.Add(new FailoverClient($"pub-q1-n{n}-{_run}", ClientVersion.V500, MqttQoS.AtLeastOnce, n, ports, _clock));
            Publishers.Add(new FailoverClient($"pub-q2-n{n}-{_run}", ClientVersion.V311, MqttQoS.ExactlyOnce, n, ports, _clock));
            Subscribers.Add(new FailoverClient($"sub-q1-n{n}-{_run}", ClientVersion.V311, MqttQoS.AtLeastOnce, n, ports, _clock));
            Subscribers.Add(new FailoverClient($"sub-q2-n{n}-{_run}", ClientVersion.V500, MqttQoS.ExactlyOnce, n, ports, _clock));
        }
    }

    public List<FailoverClient> Publishers { get; } = new();

    public List<FailoverClient> Subscribers { get; } = new();

    public IEnumerable<FailoverClient> All => Publishers.Concat(Subscribers);

    /// <summary>Milliseconds from the fault until the last client was resumed (see <see cref="ResumeTimes"/>).</summary>
    public long FailoverMs { get; private set; }

    /// <summary>
    /// Runs the load around <paramref name="fault"/>: returns when the subscribers have everything acknowledged (or
    /// the drain timed out; <see cref="Verify"/> reports what is missing).
    /// </summary>
    public async Task RunAsync(Func<Task> fault, Action<string> log)
    {
        foreach (var subscriber in Subscribers)
        {
            await subscriber.StartAsync($"fo/{_run}/#");
        }

        foreach (var publisher in Publishers)
        {
            await publisher.StartAsync("");
        }

        using var stopPublishing = new CancellationTokenSource();
        using var stopReceiving = new CancellationTokenSource();
        var receiving = Subscribers.Select(s => Task.Run(() => s.ReceiveLoopAsync(stopReceiving.Token))).ToList();
        var publishing = Publishers.Select(p => Task.Run(() => p.PublishLoopAsync(_run, () => _faultAtMs, stopPublishing.Token))).ToList();
        try
        {
            await WaitForAsync(() => Publishers.All(p => p.AckedCount >= 40), "every publisher has 40 acknowledged messages");
            log($"before the fault: {Publishers.Sum(p => p.AckedCount)} publishes acknowledged at {_clock.ElapsedMilliseconds} ms");
            _faultAtMs = _clock.ElapsedMilliseconds;
            foreach (var publisher in Publishers)
            {
                var last = publisher.LastSentSeq;
                _inFlightAtFault[publisher] = publisher.Acked.Contains(last) ? null : last;
            }

            await fault();
            log($"fault applied (signal at {_faultAtMs} ms, node gone at {_clock.ElapsedMilliseconds} ms, {DateTime.UtcNow:HH:mm:ss.fff} UTC)");

            await WaitForAsync(() => ResumeTimes().All(r => r.Value is not null), "every client resumed",
                () => string.Join(", ", ResumeTimes().Where(r => r.Value is null).Select(r => r.Key)));
            FailoverMs = ResumeTimes().Max(r => r.Value!.Value) - _faultAtMs.Value;

            // A little more of the stream after everyone is back, then stop and drain.
            var after = Publishers.ToDictionary(p => p, p => p.AckedCount);
            await WaitForAsync(() => Publishers.All(p => p.AckedCount >= after[p] + 20), "20 more acknowledged per publisher");
        }
        finally
        {
            await stopPublishing.CancelAsync();
            await Task.WhenAll(publishing).WaitAsync(PhaseTimeout);
        }

        try
        {
            await WaitForAsync(() => Subscribers.All(s => Missing(s).Count == 0), "every acknowledged message delivered",
                () => string.Join(", ", Subscribers.Select(s => $"{s.Id} missing {Missing(s).Count}")));
        }
        finally
        {
            await stopReceiving.CancelAsync();
            await Task.WhenAll(receiving).WaitAsync(PhaseTimeout);
            foreach (var client in All)
            {
                await client.CloseAsync();
            }
        }
    }

    /// <summary>
    /// When each client was resumed, on the run clock: a publisher at its first acknowledgement of a message sent after
    /// the fault; a subscriber when it has received, from every publisher, a message that publisher sent after the
    /// fault. Null while not yet.
    /// </summary>
    public IReadOnlyDictionary<string, long?> ResumeTimes()
    {
        var times = new Dictionary<string, long?>();
        foreach (var publisher in Publishers)
        {
            times[publisher.Id] = publisher.ResumedAtMs;
        }

        foreach (var subscriber in Subscribers)
        {
            var receipts = subscriber.Receipts;
            long? latest = 0;
            foreach (var publisher in Publishers)
            {
                var first = publisher.FirstSeqAfterFault;
                var at = first is null ? null : receipts.Where(r => r.Publisher == publisher.Id && r.Seq >= first).Select(r => (long?)r.AtMs).FirstOrDefault();
                latest = at is null || latest is null ? null : Math.Max(latest.Value, at.Value);
            }

            times[subscriber.Id] = latest;
        }

        return times;
    }

    /// <summary>Acknowledged messages (publisher, seq) that <paramref name="subscriber"/> has not received.</summary>
    public List<(string Publisher, int Seq)> Missing(FailoverClient subscriber)
    {
        var received = subscriber.Receipts.Select(r => (r.Publisher, r.Seq)).ToHashSet();
        return Publishers.SelectMany(p => p.Acked.Select(seq => (p.Id, seq))).Where(m => !received.Contains(m)).ToList();
    }

    /// <summary>
    /// The promise, as a list of violations (empty when kept): nothing acknowledged is missing at any subscriber;
    /// a QoS 2 message reached each QoS 2 subscriber exactly once (also the one in flight at the fault: its
    /// publisher's session journals it before routing it, and routes it again under the same origin, which the
    /// subscribers' sessions recognise); each publisher's messages arrived in order; no client met a problem (a
    /// reconnect without its session, an unexpected packet).
    /// </summary>
    public List<string> Verify()
    {
        var violations = All.SelectMany(c => c.Problems).ToList();
        foreach (var subscriber in Subscribers)
        {
            var missing = Missing(subscriber);
            if (missing.Count > 0)
            {
                violations.Add($"{subscriber.Id}: {missing.Count} acknowledged messages never arrived, e.g. {string.Join(", ", missing.Take(5))}");
            }

            var receipts = subscriber.Receipts;
            foreach (var publisher in Publishers)
            {
                var seqs = receipts.Where(r => r.Publisher == publisher.Id).Select(r => r.Seq).ToList();
                if (subscriber.QoS == MqttQoS.ExactlyOnce && publisher.QoS == MqttQoS.ExactlyOnce)
                {
                    var twice = seqs.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
                    if (twice.Count > 0)
                    {
                        var acked = publisher.Acked;
                        var inFlight = _inFlightAtFault.GetValueOrDefault(publisher);
                        violations.Add($"{subscriber.Id}: QoS 2 from {publisher.Id} taken more than once: " +
                            string.Join(", ", twice.Take(10).Select(s => (acked.Contains(s) ? $"{s} (acknowledged" : $"{s} (not acknowledged") +
                                (s == inFlight ? ", in flight at the fault)" : ")"))));
                    }
                }

                var firsts = seqs.Distinct().ToList();
                var outOfOrder = firsts.Zip(firsts.Skip(1), (a, b) => (Before: a, After: b)).Where(x => x.After < x.Before).ToList();
                if (outOfOrder.Count > 0)
                {
                    violations.Add($"{subscriber.Id}: from {publisher.Id} out of order: {string.Join(", ", outOfOrder.Take(5))}");
                }
            }
        }

        return violations;
    }

    public string Summary()
    {
        var text = new StringBuilder();
        text.AppendLine($"failover: every client resumed {FailoverMs} ms after the fault");
        text.AppendLine($"acknowledged publishes: {Publishers.Sum(p => p.AckedCount)}; deliveries received: {Subscribers.Sum(s => s.Receipts.Count)}; " +
            $"missing: {Subscribers.Sum(s => Missing(s).Count)}");
        foreach (var (id, at) in ResumeTimes().OrderBy(r => r.Key))
        {
            var client = All.First(c => c.Id == id);
            text.AppendLine($"  {id}: resumed at +{at - _faultAtMs} ms; reconnects {string.Join(" ", client.Reconnects)}; " +
                $"disconnect reasons [{string.Join(",", client.DisconnectReasons)}]; refusals {client.Refusals.Count}");
        }

        return text.ToString();
    }

    private async Task WaitForAsync(Func<bool> condition, string what, Func<string>? state = null)
    {
        var deadline = DateTime.UtcNow + PhaseTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not within {PhaseTimeout.TotalSeconds} s: {what}. {state?.Invoke()}\n{Summary()}");
            }

            await Task.Delay(50);
        }
    }
}
