using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Counts the confirmations a QoS 1/2 publish needs before its publisher may be acknowledged: the topic entity says
/// how many sessions it delivered to (<see cref="PublishRouted"/>), and each of those sessions confirms
/// (<see cref="DeliveryStored"/>) once the message is stored for it. The two kinds can arrive in either order.
/// <para>
/// A session whose queue is full may answer "held" first (<see cref="MarkHeld"/>): its publisher is then not read until
/// no publish of it is held (<see cref="HeldCount"/>). A publish may not wait on one slow session beyond the publisher
/// hold (<see cref="RemoveUnconfirmed"/>): it is then refused, never acknowledged.
/// </para>
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

    /// <summary>Pending publishes a full queue holds (see <see cref="MarkHeld"/>).</summary>
    public int HeldCount { get; private set; }

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
            states.Add(Remove(id).State);
        }

        return states;
    }

    /// <summary>
    /// A full queue holds the publish (<see cref="DeliveryOutcome.Held"/>): true when it was not held before, with its state.
    /// </summary>
    public bool MarkHeld(long id, long nowMs, out TState state)
    {
        if (_pending is null || !_pending.TryGetValue(id, out var entry))
        {
            state = default!;
            return false;
        }

        state = entry.State;
        if (entry.HeldAtMs != 0)
        {
            return false;
        }

        entry.HeldAtMs = Math.Max(1, nowMs);
        HeldCount++;
        return true;
    }

    /// <summary>
    /// Publishes that wait on a session that is slow to confirm (recovering, its shard moving, its storage stalled):
    /// not confirmed within <paramref name="holdMs"/> of being routed, or, held by a full queue, not answered by it
    /// within <paramref name="holdMs"/> and a grace of having been held (the queue refuses them itself at its hold; the
    /// grace covers its check's period and the way back). Removed and returned, in the order they came, to be refused:
    /// a publisher waits on a slow session no longer than on a full queue, and is never told that what was not stored is.
    /// </summary>
    public List<TState>? RemoveUnconfirmed(long nowMs, long holdMs)
    {
        if (_pending is null)
        {
            return null;
        }

        var graceMs = Math.Min(holdMs, 1000) + 500;
        List<long>? due = null;
        foreach (var (id, entry) in _pending)
        {
            if (entry.HeldAtMs == 0 ? nowMs - entry.StartedAtMs >= holdMs : nowMs - entry.HeldAtMs >= holdMs + graceMs)
            {
                (due ??= []).Add(id);
            }
        }

        if (due is null)
        {
            return null;
        }

        due.Sort();
        var states = new List<TState>(due.Count);
        foreach (var id in due)
        {
            states.Add(Remove(id).State);
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

    /// <summary>The states of the publishes still waiting, in no order.</summary>
    public IEnumerable<TState> States => _pending is null ? [] : _pending.Values.Select(e => e.State);

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

        Remove(id);
        CompletedRefused = entry.Refused;
        return true;
    }

    private Entry Remove(long id)
    {
        _pending!.Remove(id, out var entry);
        if (entry!.HeldAtMs != 0)
        {
            HeldCount--;
        }

        return entry;
    }

    private sealed class Entry(TState state)
    {
        public TState State { get; } = state;

        public bool Routed { get; set; }

        public int Outstanding { get; set; }

        public bool Refused { get; set; }

        public long StartedAtMs { get; init; }

        public long HeldAtMs { get; set; }
    }
}
