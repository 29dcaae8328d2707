using System.Collections.Concurrent;
using System.Diagnostics;
using Broker.Protocol;
using HdrHistogram;

namespace Broker.LoadTests.Runner;

public enum RunPhase
{
    Setup,
    WarmUp,
    Measure,
    Drain,
    Done,
}

/// <summary>
/// What a run counts: every message sent and acknowledged per publisher, every message received per subscriber
/// (loss and duplicates are exact, by sequence number), latency from the payload's timestamp into HdrHistogram
/// (microseconds; recorded only while measuring), and per-second counters and histograms for the time series.
/// Thread-safe: publishers' loops, readers and the sampler touch it at once.
/// </summary>
public sealed class RunMetrics
{
    private const long MaxLatencyMicros = 120_000_000;
    private const int MaxSeconds = 4 * 3600;
    private readonly ConcurrentDictionary<int, PublisherRecord> _publishers = new();
    private readonly ConcurrentDictionary<(int Subscriber, int Publisher), SeqSet> _receivedSets = new();
    private readonly ConcurrentDictionary<int, int[]> _expectations = new();
    private readonly LongConcurrentHistogram _latency = new(1, MaxLatencyMicros, 3);
    private readonly LongConcurrentHistogram?[] _perSecond = new LongConcurrentHistogram?[MaxSeconds];
    private readonly long[] _duplicates = new long[3];
    private readonly long[] _receivedByQos = new long[3];
    private readonly long[] _measuredByQos = new long[3];
    private readonly long _startedAt = Stopwatch.GetTimestamp();
    private long _sent;
    private long _received;
    private long _operations;
    private long _measuredOperations;
    private long _errors;
    private long _refused;
    private volatile RunPhase _phase = RunPhase.Setup;

    public RunPhase Phase
    {
        get => _phase;
        set => _phase = value;
    }

    public long Sent => Interlocked.Read(ref _sent);

    public long Received => Interlocked.Read(ref _received);

    public long Operations => Interlocked.Read(ref _operations);

    public long MeasuredOperations => Interlocked.Read(ref _measuredOperations);

    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>QoS 1/2 publishes the broker answered with a failure reason (v5 PUBACK/PUBREC 0x80 and above): not acknowledged.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    public void OnRefused() => Interlocked.Increment(ref _refused);

    /// <summary>Whether delivered messages feed the latency histogram (false: a scenario records its own operations' latency only).</summary>
    public bool DeliveryLatency { get; set; } = true;

    public long MeasuredDeliveries(MqttQoS qos) => Interlocked.Read(ref _measuredByQos[(int)qos]);

    public LongConcurrentHistogram Latency => _latency;

    public string? LastError { get; private set; }

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_startedAt);

    public PublisherRecord RegisterPublisher(int publisherId, MqttQoS qos) =>
        _publishers.GetOrAdd(publisherId, id => new PublisherRecord(id, qos));

    /// <summary>Declares which publishers' messages a subscriber must receive (for loss).</summary>
    public void ExpectAtSubscriber(int subscriber, params int[] publisherIds) =>
        _expectations.AddOrUpdate(subscriber, publisherIds, (_, old) => [.. old, .. publisherIds]);

    public void OnSent(PublisherRecord publisher, long sequence)
    {
        publisher.Sent.Add(sequence);
        Interlocked.Increment(ref _sent);
    }

    public void OnAcked(PublisherRecord publisher, long sequence) => publisher.Acked.Add(sequence);

    /// <summary>A message carrying the runner's payload arrived at a subscriber.</summary>
    public void OnReceived(int subscriber, ReadOnlySpan<byte> payload)
    {
        if (!Payload.TryRead(payload, out var sentAt, out var publisherId, out var sequence) ||
            !_publishers.TryGetValue(publisherId, out var publisher))
        {
            OnError("a message without the runner's payload header arrived");
            return;
        }

        var qos = (int)publisher.QoS;
        var set = _receivedSets.GetOrAdd((subscriber, publisherId), _ => new SeqSet());
        if (!set.Add(sequence))
        {
            Interlocked.Increment(ref _duplicates[qos]);
            return;
        }

        Interlocked.Increment(ref _received);
        Interlocked.Increment(ref _receivedByQos[qos]);
        if (_phase == RunPhase.Measure)
        {
            Interlocked.Increment(ref _measuredByQos[qos]);
            if (DeliveryLatency)
            {
                RecordLatency(Payload.MicrosecondsSince(sentAt));
            }
        }
    }

    /// <summary>One completed operation that is not a message (a connect, a retained fetch).</summary>
    public void OnOperation(long latencyMicros)
    {
        Interlocked.Increment(ref _operations);
        if (_phase == RunPhase.Measure)
        {
            Interlocked.Increment(ref _measuredOperations);
            RecordLatency(latencyMicros);
        }
    }

    public void RecordLatency(long micros)
    {
        var value = Math.Clamp(micros, 1, MaxLatencyMicros);
        _latency.RecordValue(value);
        var second = (int)Elapsed.TotalSeconds;
        if (second < MaxSeconds)
        {
            var h = Volatile.Read(ref _perSecond[second]);
            if (h is null)
            {
                Interlocked.CompareExchange(ref _perSecond[second], new LongConcurrentHistogram(1, MaxLatencyMicros, 2), null);
                h = _perSecond[second]!;
            }

            h.RecordValue(value);
        }
    }

    public void OnError(string message)
    {
        Interlocked.Increment(ref _errors);
        LastError = message;
    }

    /// <summary>The latency histogram of one second of the run (null when nothing was recorded in it).</summary>
    public HistogramBase? SecondHistogram(int second) => second is >= 0 and < MaxSeconds ? Volatile.Read(ref _perSecond[second]) : null;

    /// <summary>Owed and lost deliveries per (subscriber, publisher) pair that lost any, for diagnosing where loss happens.</summary>
    public IEnumerable<string> LossBreakdown()
    {
        foreach (var (subscriber, publisherIds) in _expectations.OrderBy(e => e.Key))
        {
            foreach (var publisherId in publisherIds.Distinct().Order())
            {
                if (_publishers.TryGetValue(publisherId, out var p))
                {
                    var owed = p.QoS == MqttQoS.AtMostOnce ? p.Sent : p.Acked;
                    _receivedSets.TryGetValue((subscriber, publisherId), out var got);
                    var lost = owed.CountMissingFrom(got);
                    if (lost > 0)
                    {
                        yield return $"subscriber {subscriber} from publisher {publisherId}: {lost} of {owed.Count} lost";
                    }
                }
            }
        }
    }

    /// <summary>Per QoS: deliveries the broker owed (acknowledged for QoS 1/2, sent for QoS 0) that never arrived.</summary>
    public QosCounts[] Tally()
    {
        var result = Enumerable.Range(0, 3).Select(q => new QosCounts { QoS = q }).ToArray();
        foreach (var p in _publishers.Values)
        {
            var q = result[(int)p.QoS];
            q.Publishers++;
            q.Sent += p.Sent.Count;
            q.Acked += p.QoS == MqttQoS.AtMostOnce ? 0 : p.Acked.Count;
        }

        foreach (var (subscriber, publisherIds) in _expectations)
        {
            foreach (var publisherId in publisherIds.Distinct())
            {
                if (!_publishers.TryGetValue(publisherId, out var p))
                {
                    continue;
                }

                var owed = p.QoS == MqttQoS.AtMostOnce ? p.Sent : p.Acked;
                _receivedSets.TryGetValue((subscriber, publisherId), out var got);
                var q = result[(int)p.QoS];
                q.Expected += owed.Count;
                q.Lost += owed.CountMissingFrom(got);
            }
        }

        for (var i = 0; i < 3; i++)
        {
            result[i].Received = Interlocked.Read(ref _receivedByQos[i]);
            result[i].Duplicates = Interlocked.Read(ref _duplicates[i]);
        }

        return result.Where(r => r.Publishers > 0).ToArray();
    }
}

/// <summary>One publishing virtual client's ledger.</summary>
public sealed class PublisherRecord(int id, MqttQoS qos)
{
    private long _nextSequence = -1;

    public int Id { get; } = id;

    public MqttQoS QoS { get; } = qos;

    public SeqSet Sent { get; } = new();

    public SeqSet Acked { get; } = new();

    public long NextSequence() => Interlocked.Increment(ref _nextSequence);
}

public sealed class QosCounts
{
    public int QoS { get; init; }

    public int Publishers { get; set; }

    public long Sent { get; set; }

    public long Acked { get; set; }

    public long Expected { get; set; }

    public long Received { get; set; }

    public long Lost { get; set; }

    public long Duplicates { get; set; }
}
