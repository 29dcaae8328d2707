namespace Broker.Sessions;

/// <summary>
/// What a live session shares with its <see cref="SessionHost"/>, in process, so that the host confirms a delivery
/// for it only when the session will surely take it: not while its queue is under pressure (full, holding or refusing
/// under "backpressure"), and not beyond the queue's bounds, in messages and in payload bytes, together with the
/// deliveries the host confirmed that the session has not seen yet. Otherwise the host hands the delivery on with its
/// publisher's reply address, and the session holds or takes it itself.
/// <code>
///   host: room = queued + in transit + this one ≤ Sessions:MaxQueuedMessages, and the same in bytes ≤ Sessions:MaxQueuedBytes
///         room ─► reserve, confirm for the session            no room ─► the session answers (holds, refuses)
///   session: Arrived (in transit -1, -bytes) on each reserved delivery; Update after every change of its queue
/// </code>
/// </summary>
public sealed class LiveQueueGauge
{
    private volatile bool _pressure;
    private volatile bool _refusing;
    private volatile int _queued;
    private long _queuedBytes;
    private int _inTransit;
    private long _inTransitBytes;

    public LiveQueueGauge(int capacity, long maxBytes = long.MaxValue)
    {
        Capacity = capacity;
        MaxBytes = maxBytes;
    }

    public int Capacity { get; }

    public long MaxBytes { get; }

    /// <summary>The session refuses every delivery until its queue drains: the host may refuse for it, in one answer per publish.</summary>
    public bool Refusing => _refusing;

    /// <summary>Host: reserves room for one delivery of <paramref name="bytes"/> it is about to confirm; false when the session must answer itself.</summary>
    public bool TryReserve(long bytes)
    {
        if (_pressure)
        {
            return false;
        }

        var count = Interlocked.Increment(ref _inTransit);
        var inTransitBytes = Interlocked.Add(ref _inTransitBytes, bytes);
        if (_queued + count > Capacity || Volatile.Read(ref _queuedBytes) + inTransitBytes > MaxBytes)
        {
            Interlocked.Decrement(ref _inTransit);
            Interlocked.Add(ref _inTransitBytes, -bytes);
            return false;
        }

        return true;
    }

    /// <summary>Session: a delivery of <paramref name="bytes"/> the host confirmed has arrived.</summary>
    public void Arrived(long bytes)
    {
        Interlocked.Decrement(ref _inTransit);
        Interlocked.Add(ref _inTransitBytes, -bytes);
    }

    /// <summary>Session: its queue's state after a change.</summary>
    public void Update(bool pressure, bool refusing, int queued, long queuedBytes)
    {
        _queued = queued;
        Volatile.Write(ref _queuedBytes, queuedBytes);
        _refusing = refusing;
        _pressure = pressure;
    }
}
