using Broker.Persistence;

namespace Broker.Node.Operations;

/// <summary>
/// Whether the journal answers: a recovery of the probe's persistence id, at most one at a time and remembered for a
/// second, so that frequent readiness probes do not become a load on the database.
/// </summary>
internal sealed class ReadinessProbe
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _one = new(1, 1);
    private long? _checkedAt;
    private bool _reachable;

    public async Task<bool> StorageReachableAsync(BrokerServer broker)
    {
        await _one.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_checkedAt is { } at && Environment.TickCount64 - at < CacheFor.TotalMilliseconds)
            {
                return _reachable;
            }

            try
            {
                await StorageProbe.ProbeAsync(broker.System, StorageSetup.Describe(broker.Options), Timeout).ConfigureAwait(false);
                _reachable = true;
            }
            catch (Exception) // unavailable, or the actor system is stopping: not ready either way
            {
                _reachable = false;
            }

            _checkedAt = Environment.TickCount64;
            return _reachable;
        }
        finally
        {
            _one.Release();
        }
    }
}
