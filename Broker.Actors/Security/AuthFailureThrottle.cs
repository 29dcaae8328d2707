using System.Collections.Concurrent;
using System.Net;

namespace Broker.Security;

/// <summary>
/// Slows down password guessing from one address: the n-th failed CONNECT in a row from an IP address gets its
/// CONNACK after <c>min(Base * 2^(n-2), Max)</c> (the first failure is answered at once: a typo costs nothing).
/// The count is forgotten <see cref="Forget"/> after the address's last failure (a success does not
/// reset it: a guesser holding one valid account could otherwise interleave logins to stay fast).
/// The connection actor waits with a scheduled message, never by blocking its thread.
/// </summary>
public sealed class AuthFailureThrottle
{
    public static readonly TimeSpan Base = TimeSpan.FromMilliseconds(250);
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(8);
    public static readonly TimeSpan Forget = TimeSpan.FromMinutes(5);
    private const int MaxTracked = 100_000;
    private readonly ConcurrentDictionary<IPAddress, (int Failures, long LastTicks)> _failures = new();

    /// <summary>Records a failure and returns how long to hold the refusal back.</summary>
    public TimeSpan Failed(IPAddress? address, long nowTicks)
    {
        if (address is null)
        {
            return TimeSpan.Zero;
        }

        if (_failures.Count >= MaxTracked)
        {
            Sweep(nowTicks);
        }

        var entry = _failures.AddOrUpdate(address, _ => (1, nowTicks), (_, old) =>
            nowTicks - old.LastTicks > (long)Forget.TotalMilliseconds ? (1, nowTicks) : (old.Failures + 1, nowTicks));
        return DelayFor(entry.Failures);
    }

    public static TimeSpan DelayFor(int failures)
    {
        if (failures <= 1)
        {
            return TimeSpan.Zero;
        }

        var ms = Base.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 2, 20));
        return TimeSpan.FromMilliseconds(Math.Min(ms, Max.TotalMilliseconds));
    }

    private void Sweep(long nowTicks)
    {
        foreach (var (address, entry) in _failures)
        {
            if (nowTicks - entry.LastTicks > (long)Forget.TotalMilliseconds)
            {
                _failures.TryRemove(address, out _);
            }
        }

        if (_failures.Count >= MaxTracked)
        {
            _failures.Clear(); // a flood from very many addresses: forget rather than grow without bound
        }
    }
}
