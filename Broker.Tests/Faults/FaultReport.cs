using System.Text;
using Broker.Protocol;

namespace Broker.Tests.Faults;

/// <summary>
/// The checks of a <see cref="FaultRun"/> and its line in the results table. Violations (must be none):
/// an acknowledged message missing at a subscriber (all were subscribed before the first publish); a QoS 2 message
/// taken twice by a QoS 2 subscriber; a publisher's messages out of order at a subscriber (first receipts); a client
/// that reconnected without its session; one client id held by two nodes in two samples in a row (half a second
/// apart: a takeover in progress may show in one). Counted, not violations: QoS 1 duplicates, client ids seen on two
/// nodes in a single sample, v5 DISCONNECT 0x8E (session taken over) received by a client, which never opens a second
/// connection before it dropped the first.
/// </summary>
public sealed class FaultReport
{
    private readonly FaultRun _run;
    private readonly NamespaceCluster _cluster;

    public FaultReport(FaultRun run, NamespaceCluster cluster)
    {
        _run = run;
        _cluster = cluster;
    }

    public int Acknowledged => _run.Publishers.Sum(p => p.Acked.Count);

    public int Lost => _run.Subscribers.Sum(s => Missing(s).Count);

    public int Qos1Duplicates => Duplicates(qos2: false);

    public int Qos2Duplicates => Duplicates(qos2: true);

    /// <summary>Acknowledged (publisher, seq) that <paramref name="subscriber"/> never received.</summary>
    public List<(string Publisher, int Seq)> Missing(FaultClient subscriber)
    {
        var received = subscriber.Receipts.Select(r => (r.Publisher, r.Seq)).ToHashSet();
        return _run.Publishers.SelectMany(p => p.Acked.Keys.Select(seq => (p.Id, seq))).Where(m => !received.Contains(m)).ToList();
    }

    /// <summary>
    /// Acknowledgements given by minority-side nodes while the fault lasted: those a publisher received while its
    /// connection was to one of the faulted nodes (by its connection history).
    /// </summary>
    public int MinorityAcks => _run.Publishers.Sum(p =>
    {
        var connections = p.Connections.ToList();
        return p.Acked.Values.Count(at => at >= _run.FaultAtMs && at <= _run.HealedAtMs &&
            connections.LastOrDefault(c => c.AtMs <= at).Node is var node && _run.Minority.Contains(node));
    });

    /// <summary>
    /// Longest time a client of that side (by the node it was on when the fault began) could not do its work from
    /// the fault on: a publisher the longest wait between acknowledgements, a subscriber its longest time without a
    /// connection. Milliseconds.
    /// </summary>
    public long Unavailable(bool minority)
    {
        long worst = 0;
        foreach (var client in _run.All.Where(c => _run.Minority.Contains(_run.NodeAtFault[c]) == minority))
        {
            if (_run.Publishers.Contains(client))
            {
                var times = client.Acked.Values.Where(t => t >= _run.FaultAtMs).Order().Prepend(_run.FaultAtMs).ToList();
                worst = Math.Max(worst, times.Zip(times.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max());
            }
            else
            {
                var end = _cluster.Clock.ElapsedMilliseconds;
                worst = Math.Max(worst, client.Outages.Where(o => (o.ToMs ?? end) >= _run.FaultAtMs)
                    .Select(o => (o.ToMs ?? end) - Math.Max(o.FromMs, _run.FaultAtMs)).DefaultIfEmpty(0).Max());
            }
        }

        return worst;
    }

    /// <summary>What the faulted nodes did from the fault until the cluster was whole (their exits and restarts).</summary>
    public string MinorityDid()
    {
        var parts = new List<string>();
        foreach (var node in _run.Minority)
        {
            var events = _cluster.EventsOf(node, _run.FaultAtMs).Where(e => e.AtMs <= _run.WholeAtMs)
                .Select(e => $"{e.What} +{(e.AtMs - _run.FaultAtMs) / 1000.0:F1}s");
            parts.Add($"node {node}: {string.Join(", ", events.DefaultIfEmpty("kept running"))}");
        }

        return $"{string.Join("; ", parts)}; {MinorityAcks} acks on its side during the fault";
    }

    public int SplitSamples => _run.OwnershipSamples.Count(s => s.Count > 0);

    public List<string> Violations()
    {
        var violations = _run.All.SelectMany(c => c.Problems).ToList();
        foreach (var subscriber in _run.Subscribers)
        {
            var missing = Missing(subscriber);
            if (missing.Count > 0)
            {
                violations.Add($"{subscriber.Id}: {missing.Count} acknowledged messages never arrived, e.g. {string.Join(", ", missing.Take(5))}");
            }

            var receipts = subscriber.Receipts;
            foreach (var publisher in _run.Publishers)
            {
                var seqs = receipts.Where(r => r.Publisher == publisher.Id).Select(r => r.Seq).ToList();
                if (subscriber.QoS == MqttQoS.ExactlyOnce && publisher.QoS == MqttQoS.ExactlyOnce)
                {
                    var twice = seqs.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
                    if (twice.Count > 0)
                    {
                        var trace = subscriber.PublishTrace.Where(t => t.Publisher == publisher.Id && twice.Contains(t.Seq))
                            .Select(t => $"{t.Seq}: {t.Trace}");
                        var acked = publisher.Acked;
                        violations.Add($"{subscriber.Id}: QoS 2 from {publisher.Id} taken more than once: " +
                            $"{string.Join(", ", twice.Take(10).Select(s => acked.ContainsKey(s) ? $"{s} (acknowledged)" : $"{s} (not acknowledged)"))}; " +
                            $"received as {string.Join("; ", trace)}");
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

        var samples = _run.OwnershipSamples;
        for (var i = 1; i < samples.Count; i++)
        {
            var both = samples[i].Intersect(samples[i - 1]).ToList();
            if (both.Count > 0)
            {
                violations.Add($"held by two nodes in consecutive samples {i - 1} and {i}: {string.Join(", ", both)}");
            }
        }

        return violations;
    }

    private int Duplicates(bool qos2)
    {
        var count = 0;
        foreach (var subscriber in _run.Subscribers)
        {
            var byPublisher = subscriber.Receipts.GroupBy(r => r.Publisher).ToDictionary(g => g.Key, g => g.ToList());
            foreach (var publisher in _run.Publishers)
            {
                var exactlyOnce = subscriber.QoS == MqttQoS.ExactlyOnce && publisher.QoS == MqttQoS.ExactlyOnce;
                if (exactlyOnce == qos2 && byPublisher.TryGetValue(publisher.Id, out var receipts))
                {
                    count += receipts.Count - receipts.Select(r => r.Seq).Distinct().Count();
                }
            }
        }

        return count;
    }

    public static string TableHeader =>
        "| fault | acknowledged | lost | duplicates QoS 1 | duplicates QoS 2 | unavailable, majority side | unavailable, minority side | two owners (samples) | what the minority side did |\n" +
        "|---|---|---|---|---|---|---|---|---|";

    public string TableRow() =>
        $"| {_run.Fault} | {Acknowledged} | {Lost} | {Qos1Duplicates} | {Qos2Duplicates} | {Unavailable(false) / 1000.0:F1} s | " +
        $"{Unavailable(true) / 1000.0:F1} s | {SplitSamples} of {_run.OwnershipSamples.Count} | {MinorityDid()} |";

    public string Details()
    {
        var text = new StringBuilder();
        text.AppendLine(TableRow());
        text.AppendLine($"fault at +{_run.FaultAtMs / 1000.0:F1} s, healed at +{_run.HealedAtMs / 1000.0:F1} s, whole at +{_run.WholeAtMs / 1000.0:F1} s");
        foreach (var client in _run.All)
        {
            text.AppendLine($"  {client.Id}: node at fault {_run.NodeAtFault[client]}; connections {string.Join(" ", client.Connections.Select(c => $"n{c.Node}@{c.AtMs / 1000.0:F1}"))}; " +
                $"disconnect reasons [{string.Join(",", client.DisconnectReasons)}]; refusals {client.Refusals.Count} {string.Join("; ", client.Refusals.Take(3))}");
        }

        var taken = _run.All.Sum(c => c.DisconnectReasons.Count(r => r == MqttReasonCode.SessionTakenOver));
        text.AppendLine($"DISCONNECT 0x8E received by clients: {taken}");
        return text.ToString();
    }
}
