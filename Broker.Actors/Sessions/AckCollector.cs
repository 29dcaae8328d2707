using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Counts the confirmations a QoS 1/2 publish needs before its publisher may be acknowledged: the topic entity says
/// how many sessions it delivered to (<see cref="PublishRouted"/>), and each of those sessions confirms
/// (<see cref="DeliveryStored"/>) once the message is stored for it. The two kinds can arrive in either order.
/// </summary>
public sealed class AckCollector<TState>
{
    private Dictionary<long, Entry>? _pending; // created on the first Expect: most connections never publish QoS 1/2
    private long _nextId;

    /// <param name="firstId">
    /// One below the first id handed out; two collectors of one actor keep their ids apart by starting far apart.
    /// </param>
    public AckCollector(long firstId = 0)
    {
        _nextId = firstId;
    }

    public int Count => _pending?.Count ?? 0;

    public long Expect(TState state, long startedAtMs = 0)
    {
        var id = ++_nextId;
        (_pending ??= new())[id] = new Entry(state) { StartedAtMs = startedAtMs };
        return id;
    }

    /// <summary>
    /// Gives up on publishes that waited longer than allowed (storage down, a node lost): they are removed and
    /// returned, so the publisher can be told (v5 reason 0x80) instead of waiting forever.
    /// </summary>
    public List<TState>? RemoveStartedBefore(long cutoffMs)
    {
        List<long>? expired = null;
        if (_pending is null)
        {
            return null;
        }

        foreach (var (id, entry) in _pending)
        {
            if (entry.StartedAtMs < cutoffMs)
            {
                (expired ??= []).Add(id);
            }
        }

        if (expired is null)
        {
            return null;
        }

        expired.Sort(); // ids grow with arrival: the publishes come back in the order they came
        var states = new List<TState>(expired.Count);
        foreach (var id in expired)
        {
            states.Add(_pending[id].State);
            _pending.Remove(id);
        }

        return states;
    }

    /// <summary>Records the routing result; returns true (with the state) when the publish is complete.</summary>
    public bool OnRouted(long id, int deliveries, out TState state)
    {
        if (_pending is null || !_pending.TryGetValue(id, out var entry))
        {
            state = default!;
            return false;
        }

        entry.Routed = true;
        entry.Outstanding += deliveries;
        return TryComplete(id, entry, out state);
    }

    /// <summary>
    /// Records <paramref name="count"/> sessions' confirmation (<paramref name="refused"/>: they did not take the message);
    /// returns true (with the state) when the publish is complete.
    /// </summary>
    public bool OnStored(long id, out TState state, int count = 1, bool refused = false)
    {
        if (_pending is null || !_pending.TryGetValue(id, out var entry))
        {
            state = default!;
            return false;
        }

        entry.Outstanding -= count;
        entry.Refused |= refused;
        return TryComplete(id, entry, out state);
    }

    /// <summary>Whether the publish completed by the last <see cref="OnRouted"/> or <see cref="OnStored"/> was refused by a session.</summary>
    public bool CompletedRefused { get; private set; }

    public bool IsPending(long id) => _pending?.ContainsKey(id) == true;

    public bool Contains(Func<TState, bool> predicate)
    {
        if (_pending is null)
        {
            return false;
        }

        foreach (var e in _pending.Values)
        {
            if (predicate(e.State))
            {
                return true;
            }
        }

        return false;
    }

    private bool TryComplete(long id, Entry entry, out TState state)
    {
        state = entry.State;
        if (!entry.Routed || entry.Outstanding > 0)
        {
            return false;
        }

        _pending!.Remove(id);
        CompletedRefused = entry.Refused;
        return true;
    }

    private sealed class Entry(TState state)
    {
        public TState State { get; } = state;

        public bool Routed { get; set; }

        public int Outstanding { get; set; }

        public bool Refused { get; set; }

        public long StartedAtMs { get; init; }
    }
}
