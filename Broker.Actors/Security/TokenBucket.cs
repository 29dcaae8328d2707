namespace Broker.Security;

/// <summary>
/// A token bucket for one client's publish rate (pure: time is passed in). It holds up to <c>burst</c> tokens and
/// gains <c>rate</c> per second; each PUBLISH takes one. The count may go below zero: packets already read when the
/// limit was reached still count, and the pause that follows lasts until the debt is paid.
/// </summary>
public sealed class TokenBucket
{
    private readonly double _ratePerMs;
    private readonly double _burst;
    private double _tokens;
    private long _lastMs;

    public TokenBucket(int ratePerSecond, int burst, long nowMs)
    {
        _ratePerMs = ratePerSecond / 1000.0;
        _burst = Math.Max(1, burst);
        _tokens = _burst;
        _lastMs = nowMs;
    }

    /// <summary>Takes one token; false when the bucket was empty (the caller should stop reading).</summary>
    public bool Take(long nowMs)
    {
        Refill(nowMs);
        _tokens -= 1;
        return _tokens >= 0;
    }

    /// <summary>Milliseconds until at least one token is available again.</summary>
    public long MsUntilAvailable(long nowMs)
    {
        Refill(nowMs);
        return _tokens >= 1 ? 0 : (long)Math.Ceiling((1 - _tokens) / _ratePerMs);
    }

    private void Refill(long nowMs)
    {
        var elapsed = nowMs - _lastMs;
        if (elapsed > 0)
        {
            _tokens = Math.Min(_burst, _tokens + (elapsed * _ratePerMs));
            _lastMs = nowMs;
        }
    }
}
