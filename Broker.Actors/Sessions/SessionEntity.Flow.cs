using Akka.Actor;
using Akka.Event;
using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Flow control at this session's queue (<c>Sessions:QueueFullPolicy</c>; the decisions are <see cref="QueueAdmission"/>'s
/// and <see cref="SessionDelivery"/>'s).
/// Under "backpressure" a delivery that meets a full queue is held unconfirmed, so its publisher's PUBACK/PUBREC waits
/// and its socket is not read (<see cref="DeliveryOutcome.Held"/>); the queue draining to its low-water mark takes the
/// held deliveries in order and confirms them; a hold past <c>Sessions:MaxPublisherHold</c> refuses them
/// (<see cref="DeliveryOutcome.Refused"/>: v5 0x97). A live session tells its <see cref="SessionHost"/> through its
/// <see cref="LiveQueueGauge"/> when it is under pressure, so that the host stops confirming for it.
/// Every drop and refusal is counted, and logged at most once a minute per session.
/// </summary>
public sealed partial class SessionEntity
{
    private const long DropLogIntervalMs = 60_000;
    private QueueAdmission? _admissionState; // created with the first QoS 1/2 delivery offered
    private QueueAdmission _admission => _admissionState ??= NewAdmission(_context.Options);
    private readonly LiveQueueGauge? _gauge; // a live session's: read by its session host
    private bool _releasing;

    private static QueueAdmission NewAdmission(Configuration.BrokerOptions o) =>
        new(o.Sessions.Policy, (long)(o.PublisherHoldSeconds * 1000));

    private static MessageQueue NewQueue(Configuration.SessionOptions o) =>
        new(o.MaxQueuedMessages, o.MaxQueuedBytes, dropOldest: o.Policy == QueueFullPolicy.DropOldest);

    /// <summary>A QoS 1/2 delivery for this session, resolved and not expired: taken, held, refused or dropped.</summary>
    private void Offer(Deliver deliver, QueuedMessage resolved)
    {
        var decision = SessionDelivery.Offer(_admission, _queue, canHold: deliver.AckTo is not null);
        switch (decision.Admission)
        {
            case Admission.Take:
                Take(deliver, resolved);
                break;
            case Admission.Hold:
                if (decision.StartHoldCheck)
                {
                    Timers.StartPeriodicTimer(PublisherHoldCheck.Instance, PublisherHoldCheck.Instance, decision.HoldCheckEvery);
                }

                _admission.Hold(deliver, resolved, Environment.TickCount64);
                deliver.AckTo!.Tell(new DeliveryStored(deliver.AckId, 0, DeliveryOutcome.Held));
                break;
            case Admission.Refuse:
                Refuse(deliver);
                break;
            case Admission.DropNewest:
                _context.Metrics.DroppedNewestAdd(1);
                Dropped("drop-newest", 1);
                Confirm(deliver);
                break;
            case Admission.Overflow:
                _context.Metrics.DroppedOverflowAdd(1);
                Dropped("overflow: twice the queue's bounds, nobody waiting on the message", 1);
                Confirm(deliver);
                break;
        }

        UpdateGauge();
    }

    /// <summary>Queues the delivery (journaled first when persistent) and confirms it once stored.</summary>
    private void Take(Deliver deliver, QueuedMessage resolved)
    {
        switch (SessionDelivery.Take(deliver.Origin, deliver.Message.PublisherClientId, _seen, deliver.PayloadId, _persistent))
        {
            case TakeAction.Duplicate:
                // A QoS 2 message routed again while its first copy was held: taken once.
                _context.Metrics.Qos2DuplicateSuppressed();
                ConfirmAfterWrites(deliver);
                break;
            case TakeAction.QueueByReference:
                QueueByReference(deliver, resolved with { PayloadId = deliver.PayloadId });
                break;
            default:
                Store(new MessageQueued(resolved, deliver.Origin), () =>
                {
                    Confirm(deliver);
                    Pump();
                });
                break;
        }
    }

    private void Refuse(Deliver deliver)
    {
        _context.Metrics.RefusedQueueFullAdd(1);
        deliver.AckTo?.Tell(new DeliveryStored(deliver.AckId, 1, DeliveryOutcome.Refused));
        Dropped($"refused (0x97) after holding its publishers for {_context.Options.PublisherHoldSeconds} s", 1);
    }

    /// <summary>The queue drained: takes the held deliveries it has room for, in order.</summary>
    private void ReleaseHeld()
    {
        if (_admissionState is null)
        {
            return; // nothing was ever offered: nothing held or refused
        }

        if (_admission.Refusing && _admission.Drained(_queue))
        {
            UpdateGauge(); // a live session's host stops refusing for it
        }

        if (_admission.HeldCount == 0 || _releasing)
        {
            return;
        }

        _releasing = true;
        try
        {
            while (_admission.TryRelease(_queue, out var held))
            {
                Take(held.Deliver, held.Message);
            }
        }
        finally
        {
            _releasing = false;
        }

        if (_admission.HeldCount == 0)
        {
            Timers.Cancel(PublisherHoldCheck.Instance);
        }

        UpdateGauge();
    }

    /// <summary>The oldest held delivery waited Sessions:MaxPublisherHold: the queue refuses what it holds, and new deliveries until it drains.</summary>
    private void ExpireHolds()
    {
        foreach (var held in _admission.Expire(Environment.TickCount64) ?? [])
        {
            Refuse(held.Deliver);
        }

        if (_admission.HeldCount == 0)
        {
            Timers.Cancel(PublisherHoldCheck.Instance);
        }

        UpdateGauge();
    }

    /// <summary>
    /// The session ends (<paramref name="ended"/>: what was on its way to it is dropped with it and confirmed, as for a
    /// session that is gone) or stops with deliveries held (they were not taken: refused).
    /// </summary>
    private void AnswerHeld(bool ended)
    {
        if (_admissionState is not { HeldCount: > 0 })
        {
            return;
        }

        var outcome = SessionDelivery.HeldAnswer(ended);
        foreach (var held in _admission.TakeAll())
        {
            held.Deliver.AckTo?.Tell(new DeliveryStored(held.Deliver.AckId, 1, outcome));
        }

        UpdateGauge();
    }

    private void UpdateGauge()
    {
        _gauge?.Update(_admission.UnderPressure(_queue), _admission.Refusing, _queue.Count, _queue.Bytes);
    }

    /// <summary>Counts nothing (the caller does); logs at most once a minute per session, with the count since the last line.</summary>
    private void Dropped(string reason, long n)
    {
        if (Stored.DropLog.Due(Environment.TickCount64, DropLogIntervalMs, out var count, n))
        {
            _log.Warning("Session {ClientId}: queue full ({Queued} messages, {QueuedBytes} bytes); {Count} QoS 1/2 message(s) {Reason} since the last report",
                _clientId, _queue.Count, _queue.Bytes, count, reason);
        }
    }

    private sealed class PublisherHoldCheck
    {
        public static readonly PublisherHoldCheck Instance = new();
    }
}
