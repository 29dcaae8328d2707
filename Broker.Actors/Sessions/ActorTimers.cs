using Akka.Actor;
using Akka.Actor.Internal;
using Akka.Event;

namespace Broker.Sessions;

/// <summary>
/// Keyed timers of one actor, held in a field of the actor (a struct: nothing is allocated until a timer starts),
/// on the node's one scheduler: what Akka's <c>IWithTimers</c> offers (a timer started again under its key replaces
/// it; a cancelled one is never delivered, even when its message is already in the mailbox) without its cost per
/// actor: <c>IWithTimers</c> gives every actor a scheduler object and a dictionary when it is created, timer or not,
/// and an idle client's connection, session and session guard run none (docs/benchmarks.md, "Connections").
/// The actor holds it in a field (nothing to create) and passes every <see cref="Tick"/> through <see cref="Accept"/> (in
/// AroundReceive), then handles the message it returns.
/// </summary>
public struct ActorTimers
{
    private Dictionary<object, Entry>? _timers;
    private int _generation;

    public void StartSingleTimer(object key, object message, TimeSpan delay) => Start(key, message, delay, null);

    public void StartPeriodicTimer(object key, object message, TimeSpan interval) => Start(key, message, interval, interval);

    public void StartPeriodicTimer(object key, object message, TimeSpan initialDelay, TimeSpan interval) =>
        Start(key, message, initialDelay, interval);

    public readonly bool IsTimerActive(object key) => _timers?.ContainsKey(key) == true;

    public void Cancel(object key)
    {
        if (_timers is not null && _timers.Remove(key, out var entry))
        {
            entry.Cancelable.Cancel();
            DropIfEmpty();
        }
    }

    // An actor whose timers all ended holds no dictionary (a connection's attach timers end at CONNACK).
    private void DropIfEmpty()
    {
        if (_timers!.Count == 0)
        {
            _timers = null;
        }
    }

    public void CancelAll()
    {
        if (_timers is null)
        {
            return;
        }

        foreach (var entry in _timers.Values)
        {
            entry.Cancelable.Cancel();
        }

        _timers = null;
    }

    /// <summary>The timer's message when <paramref name="tick"/> is current (a periodic timer is scheduled again), else null.</summary>
    public object? Accept(Tick tick)
    {
        if (_timers is null || !_timers.TryGetValue(tick.Key, out var entry) || entry.Generation != tick.Generation)
        {
            return null;
        }

        if (entry.Interval is { } interval)
        {
            entry.Cancelable = Schedule(interval, tick);
        }
        else
        {
            _timers.Remove(tick.Key);
            DropIfEmpty();
        }

        return entry.Message;
    }

    private void Start(object key, object message, TimeSpan delay, TimeSpan? interval)
    {
        Cancel(key);
        var generation = ++_generation;
        (_timers ??= new Dictionary<object, Entry>(2))[key] = new Entry(message, generation, interval, Schedule(delay, new Tick(key, generation)));
    }

    // The actor and its scheduler are the ones whose message (or constructor) runs now: the timers are used on their
    // actor's thread only, so they need not keep either (two references less in every actor that has them).
    private static ICancelable Schedule(TimeSpan delay, Tick tick)
    {
        var cell = InternalCurrentActorCellKeeper.Current
            ?? throw new InvalidOperationException("ActorTimers used outside its actor's message handling");
        return cell.System.Scheduler.ScheduleTellOnceCancelable(delay, cell.Self, tick, ActorRefs.NoSender);
    }

    private sealed class Entry(object message, int generation, TimeSpan? interval, ICancelable cancelable)
    {
        public object Message { get; } = message;

        public int Generation { get; } = generation;

        public TimeSpan? Interval { get; } = interval;

        public ICancelable Cancelable { get; set; } = cancelable;
    }

    /// <summary>One scheduled firing; not logged as a dead letter when its actor has stopped meanwhile.</summary>
    public sealed record Tick(object Key, int Generation) : IDeadLetterSuppression;
}
