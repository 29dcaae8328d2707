namespace Broker.Sessions;

/// <summary>
/// Says when an often-repeated event is worth a log line: the first time, then at most once per interval, with the
/// number of times it happened since the last line (so a flood of drops costs one line a minute, not one per message).
/// </summary>
public struct LogThrottle
{
    private long _lastMs;
    private long _since;
    private bool _logged;

    /// <summary>Counts one event (or <paramref name="n"/>); true with the count since the last line when a line is due.</summary>
    public bool Due(long nowMs, long intervalMs, out long count, long n = 1)
    {
        _since += n;
        if (_logged && nowMs - _lastMs < intervalMs)
        {
            count = 0;
            return false;
        }

        _logged = true;
        _lastMs = nowMs;
        count = _since;
        _since = 0;
        return true;
    }
}
