using System.Diagnostics;
using Broker.Protocol;

namespace Broker.Cluster;

/// <summary>
/// The counters and gauges that operators read (Prometheus /metrics, $SYS topics). Every write is one Interlocked
/// operation on a field or a fixed array slot: nothing allocates or locks on the message path; readers sum at scrape.
/// </summary>
public sealed partial class BrokerMetrics
{
    private readonly long[] _publishIn = new long[3];
    private readonly long[] _publishOut = new long[3];
    private readonly long[] _payloadBytesIn = new long[3];
    private readonly long[] _payloadBytesOut = new long[3];
    private readonly long[] _connectRefused = new long[256];
    private readonly long[] _disconnects = new long[Enum.GetValues<DisconnectReason>().Length];
    private long _bytesIn;
    private long _bytesOut;
    private long _connects;
    private long _sessions;
    private long _sessionsOnline;
    private long _subscriptions;
    private long _queued;
    private long _inflight;
    private long _retained;

    /// <summary>When this node's counters started (the node's uptime for $SYS/broker/uptime).</summary>
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Journal write latency of session and topic entities (PersistAsync to its callback).</summary>
    public LatencyHistogram PersistLatency { get; } = new();

    public long BytesIn => Interlocked.Read(ref _bytesIn);

    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>CONNECTs accepted (CONNACK success) since start.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Session entities holding a session on this node (online or offline).</summary>
    public long Sessions => Interlocked.Read(ref _sessions);

    /// <summary>Session entities on this node with a connection attached.</summary>
    public long SessionsOnline => Interlocked.Read(ref _sessionsOnline);

    /// <summary>Subscriptions of the sessions hosted on this node.</summary>
    public long Subscriptions => Interlocked.Read(ref _subscriptions);

    /// <summary>Messages waiting in the queues of sessions hosted on this node (beyond their in-flight window).</summary>
    public long Queued => Interlocked.Read(ref _queued);

    /// <summary>Messages sent to clients of sessions on this node and not yet acknowledged.</summary>
    public long Inflight => Interlocked.Read(ref _inflight);

    /// <summary>Topics holding a retained message, cluster-wide (this node's replica of the retained index).</summary>
    public long RetainedMessages => Interlocked.Read(ref _retained);

    public long PublishIn(MqttQoS qos) => Interlocked.Read(ref _publishIn[(int)qos]);

    public long PublishOut(MqttQoS qos) => Interlocked.Read(ref _publishOut[(int)qos]);

    public long PayloadBytesIn(MqttQoS qos) => Interlocked.Read(ref _payloadBytesIn[(int)qos]);

    public long PayloadBytesOut(MqttQoS qos) => Interlocked.Read(ref _payloadBytesOut[(int)qos]);

    public long ConnectRefused(MqttReasonCode reason) => Interlocked.Read(ref _connectRefused[(byte)reason]);

    public long Disconnects(DisconnectReason reason) => Interlocked.Read(ref _disconnects[(int)reason]);

    /// <summary>A PUBLISH arrived from a client (counted once, whatever happens to it next).</summary>
    public void PublishReceived(MqttQoS qos, int payloadBytes)
    {
        MessageIn();
        Interlocked.Increment(ref _publishIn[(int)qos]);
        Interlocked.Add(ref _payloadBytesIn[(int)qos], payloadBytes);
    }

    /// <summary>A PUBLISH was written to a client (resends with DUP count again, as on the wire).</summary>
    public void PublishSent(MqttQoS qos, int payloadBytes)
    {
        MessageOut();
        Interlocked.Increment(ref _publishOut[(int)qos]);
        Interlocked.Add(ref _payloadBytesOut[(int)qos], payloadBytes);
    }

    /// <summary>Bytes of MQTT packets read from sockets (every packet type).</summary>
    public void BytesReceived(int n) => Interlocked.Add(ref _bytesIn, n);

    /// <summary>Bytes of MQTT packets encoded for sockets (every packet type).</summary>
    public void BytesSent(int n) => Interlocked.Add(ref _bytesOut, n);

    public void Connected() => Interlocked.Increment(ref _connects);

    public void ConnectRefusedAdd(MqttReasonCode reason) => Interlocked.Increment(ref _connectRefused[(byte)reason]);

    public void Disconnected(DisconnectReason reason) => Interlocked.Increment(ref _disconnects[(int)reason]);

    /// <summary>Changes of the session gauges reported by one session entity (deltas, so entities need no registry).</summary>
    public void SessionGauges(int sessions, int online, int subscriptions, int queued, int inflight)
    {
        if (sessions != 0)
        {
            Interlocked.Add(ref _sessions, sessions);
        }

        if (online != 0)
        {
            Interlocked.Add(ref _sessionsOnline, online);
        }

        if (subscriptions != 0)
        {
            Interlocked.Add(ref _subscriptions, subscriptions);
        }

        if (queued != 0)
        {
            Interlocked.Add(ref _queued, queued);
        }

        if (inflight != 0)
        {
            Interlocked.Add(ref _inflight, inflight);
        }
    }

    public void RetainedAdd(int delta) => Interlocked.Add(ref _retained, delta);
}

/// <summary>Why an accepted connection ended (the label of mqtt_disconnects_total).</summary>
public enum DisconnectReason
{
    /// <summary>The client sent DISCONNECT.</summary>
    ClientDisconnect,

    /// <summary>The socket closed without DISCONNECT (network, client crash).</summary>
    ConnectionLost,

    KeepAliveTimeout,

    ProtocolError,

    SessionTakenOver,

    /// <summary>Disconnected by an operator (management API).</summary>
    Administrative,

    ServerShutdown,

    /// <summary>The client's session stopped or could not be stored in time; the client was closed to start over.</summary>
    ServerError,
}

/// <summary>
/// A fixed-bucket latency histogram in the Prometheus shape (cumulative buckets are computed when read). Recording is
/// two Interlocked increments and one add: no lock, no allocation.
/// </summary>
public sealed class LatencyHistogram
{
    /// <summary>Upper bounds in seconds.</summary>
    public static readonly double[] Bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly long[] BoundTicks = Bounds.Select(b => (long)(b * Stopwatch.Frequency)).ToArray();
    private readonly long[] _buckets = new long[Bounds.Length + 1];
    private long _count;
    private long _sumTicks;

    public long Count => Interlocked.Read(ref _count);

    public double SumSeconds => (double)Interlocked.Read(ref _sumTicks) / Stopwatch.Frequency;

    /// <summary>Records the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    public void RecordSince(long startTimestamp)
    {
        var ticks = Stopwatch.GetTimestamp() - startTimestamp;
        var i = 0;
        while (i < BoundTicks.Length && ticks > BoundTicks[i])
        {
            i++;
        }

        Interlocked.Increment(ref _buckets[i]);
        Interlocked.Add(ref _sumTicks, ticks);
        Interlocked.Increment(ref _count);
        Observed?.Invoke((double)ticks / Stopwatch.Frequency);
    }

    /// <summary>Each recorded latency in seconds, for the meter's histogram instrument (<see cref="BrokerMeter"/>).</summary>
    public Action<double>? Observed { get; set; }

    /// <summary>Non-cumulative count of bucket <paramref name="i"/> (the last one is +Inf).</summary>
    public long Bucket(int i) => Interlocked.Read(ref _buckets[i]);
}
