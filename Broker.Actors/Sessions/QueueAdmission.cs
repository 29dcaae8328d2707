using Broker.Routing;

namespace Broker.Sessions;

/// <summary>What a session does with a new QoS 1/2 delivery, given its queue (<see cref="QueueAdmission.Admit"/>).</summary>
public enum Admission
{
    /// <summary>Queue it (and confirm it once stored).</summary>
    Take,

    /// <summary>Keep it aside unconfirmed: its publisher waits (and is not read) until the queue drains.</summary>
    Hold,

    /// <summary>Do not take it; its publisher hears 0x97 (v5) or is disconnected unacknowledged (3.1.1).</summary>
    Refuse,

    /// <summary>Confirm it without queueing it (drop-newest, counted).</summary>
    DropNewest,

    /// <summary>Confirm it without queueing it: nobody can be made to wait for it and the queue is at twice its bound (counted).</summary>
    Overflow,
}

/// <summary>
/// Flow control at a subscriber's queue: the pure decisions of <c>Sessions:QueueFullPolicy</c> and the deliveries held
/// under "backpressure". A delivery held is neither queued nor journaled nor confirmed, so its publisher's PUBACK/PUBREC
/// waits (a held publisher is not read from either); nothing acknowledged is ever dropped.
/// <code>
///            queue full (high water)                 oldest held for Sessions:MaxPublisherHold
///   taking ───────────────────────────► holding ──────────────────────────────────────────► refusing
///     ▲  ◄── queue at low water: the held ones ──┘   (every held one refused, 0x97)             │
///     │      are taken, in order                                                              │
///     └──────────────────────────────── queue at low water ◄────────────────────────────────────┘
/// </code>
/// While anything is held, later deliveries are held behind it (one publisher's messages stay in order). A delivery
/// without anyone to confirm to (a retained message for a new subscription, one the session host confirmed already)
/// cannot be held: it is taken, up to twice the queue's bounds (<see cref="Admission.Overflow"/> beyond).
/// </summary>
public sealed class QueueAdmission
{
    private Queue<HeldDelivery>? _held; // created with the first held delivery (backpressure only)

    public QueueAdmission(QueueFullPolicy policy, long maxHoldMs)
    {
        Policy = policy;
        MaxHoldMs = maxHoldMs;
    }

    public QueueFullPolicy Policy { get; }

    public long MaxHoldMs { get; }

    public int HeldCount => _held?.Count ?? 0;

    /// <summary>A hold ran out and the queue has not drained to its low-water mark since: new deliveries are refused at once.</summary>
    public bool Refusing { get; private set; }

    /// <summary>Under "backpressure" and full, holding or refusing: deliveries should come with someone to confirm to.</summary>
    public bool UnderPressure(MessageQueue queue) =>
        Policy == QueueFullPolicy.Backpressure && (Refusing || HeldCount > 0 || queue.IsFull);

    public Admission Admit(MessageQueue queue, bool canHold)
    {
        switch (Policy)
        {
            case QueueFullPolicy.DropOldest:
                return Admission.Take; // the queue drops its oldest
            case QueueFullPolicy.DropNewest:
                return queue.IsFull ? Admission.DropNewest : Admission.Take;
        }

        if (Refusing && queue.IsBelowLowWater && HeldCount == 0)
        {
            Refusing = false;
        }

        if (!canHold)
        {
            return queue.IsOverflowing ? Admission.Overflow : Admission.Take;
        }

        if (Refusing)
        {
            return Admission.Refuse;
        }

        return HeldCount > 0 || queue.IsFull ? Admission.Hold : Admission.Take;
    }

    /// <summary>The queue drained to its low-water mark: refusing ends (true when it did).</summary>
    public bool Drained(MessageQueue queue)
    {
        if (Refusing && HeldCount == 0 && queue.IsBelowLowWater)
        {
            Refusing = false;
            return true;
        }

        return false;
    }

    public void Hold(Deliver deliver, QueuedMessage message, long nowMs) => (_held ??= new()).Enqueue(new HeldDelivery(deliver, message, nowMs));

    /// <summary>
    /// The queue drained: the held deliveries it has room for now, in order (none unless it is at its low-water mark,
    /// then until it is full again).
    /// </summary>
    public bool TryRelease(MessageQueue queue, out HeldDelivery held)
    {
        held = default;
        if (_held is not { Count: > 0 } || queue.IsFull)
        {
            Releasing = false;
            return false;
        }

        if (!Releasing && !queue.IsBelowLowWater)
        {
            return false;
        }

        Releasing = true;
        held = _held.Dequeue();
        return true;
    }

    /// <summary>Between the low-water mark and full, releasing goes on once it started (hysteresis).</summary>
    private bool Releasing { get; set; }

    /// <summary>
    /// The oldest held delivery waited <see cref="MaxHoldMs"/>: the subscriber is not draining its queue, so every held
    /// delivery is given back to be refused, and so is every new one until the queue reaches its low-water mark.
    /// </summary>
    public List<HeldDelivery>? Expire(long nowMs)
    {
        if (_held is not { Count: > 0 } || nowMs - _held.Peek().SinceMs < MaxHoldMs)
        {
            return null;
        }

        Refusing = true;
        return TakeAll();
    }

    /// <summary>Every held delivery, removed (the session ends or stops).</summary>
    public List<HeldDelivery> TakeAll()
    {
        var all = _held is null ? new List<HeldDelivery>() : new List<HeldDelivery>(_held);
        _held?.Clear();
        Releasing = false;
        return all;
    }
}

/// <summary>A delivery kept unconfirmed by a full queue, since <see cref="SinceMs"/>.</summary>
public readonly record struct HeldDelivery(Deliver Deliver, QueuedMessage Message, long SinceMs);
