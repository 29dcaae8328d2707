using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Messages whose payload is stored once by the topic entity (the flow is drawn in SharedPayloadProtocol.cs). The
/// session journals the message without its payload plus the payload id, asks the topic to hold the payload for it,
/// and confirms the delivery to the publisher only when both are stored. It keeps the payload in memory while it
/// lives; a recovering session fetches its payloads from their topics (one request per topic) before it serves
/// anything. When the last entry referencing a payload is removed and that removal is stored, the session releases
/// it. <see cref="_payloadRefs"/> counts the queued and in-flight entries per reference (one publish can reach a
/// session twice: through a shared and a non-shared subscription).
/// </summary>
public sealed partial class SessionEntity
{
    private static readonly TimeSpan FetchRetryEvery = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan HandOffHeldWait = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan HoldRetryEvery = TimeSpan.FromSeconds(10);

    // Created on first use, as most sessions never hold a reference (memory per idle connection).
    // (in SessionStorageState: an idle session holds none)
    private Dictionary<(string Topic, long Id), int>? _payloadRefs { get => _stored?.PayloadRefs; set { if (_stored is not null || value is not null) Stored.PayloadRefs = value; } }

    // by the event being applied
    private List<(string Topic, long Id)>? _released { get => _stored?.Released; set { if (_stored is not null || value is not null) Stored.Released = value; } }

    private Dictionary<(string Topic, long Id), (MqttApplicationMessage Message, List<PendingConfirm> Confirms)>? _awaitingHeld { get => _stored?.AwaitingHeld; set { if (_stored is not null || value is not null) Stored.AwaitingHeld = value; } }

    private HashSet<(string Topic, long Id)>? _fetched { get => _stored?.Fetched; set { if (_stored is not null || value is not null) Stored.Fetched = value; } }

    // recovery: ids asked per topic, not yet answered
    private Dictionary<string, List<long>>? _fetching { get => _stored?.Fetching; set { if (_stored is not null || value is not null) Stored.Fetching = value; } }

    private List<(string Topic, long Id)>? _replayReleased { get => _stored?.ReplayReleased; set { if (_stored is not null || value is not null) Stored.ReplayReleased = value; } }

    private bool _stopWhenHeld { get => _stored?.StopWhenHeld ?? default; set { if (_stored is not null || value != default) Stored.StopWhenHeld = value; } }

    private void RefAdded(QueuedMessage m)
    {
        if (m.PayloadId != 0)
        {
            var key = (m.Message.Topic, m.PayloadId);
            var refs = _payloadRefs ??= new();
            refs[key] = refs.GetValueOrDefault(key) + 1;
        }
    }

    private void RefRemoved(QueuedMessage m)
    {
        if (m.PayloadId == 0)
        {
            return;
        }

        var key = (m.Message.Topic, m.PayloadId);
        if (_payloadRefs?.TryGetValue(key, out var count) == true && count > 1)
        {
            _payloadRefs[key] = count - 1;
            return;
        }

        _payloadRefs?.Remove(key);
        (_released ??= new()).Add(key);
    }

    /// <summary>Journals <paramref name="entry"/> by reference; the publisher hears of it once the topic holds the payload too.</summary>
    private void QueueByReference(Deliver deliver, QueuedMessage entry)
    {
        var key = (entry.Message.Topic, entry.PayloadId);
        var confirm = new PendingConfirm(deliver);
        var awaiting = _awaitingHeld ??= new();
        if (awaiting.TryGetValue(key, out var earlier))
        {
            earlier.Confirms.Add(confirm);
        }
        else
        {
            if (awaiting.Count == 0)
            {
                Timers.StartPeriodicTimer(HoldRetry.Instance, HoldRetry.Instance, HoldRetryEvery);
            }

            awaiting[key] = (deliver.Message, [confirm]);
        }

        _context.TopicRegion.Tell(new HoldPayload(key.Topic, _clientId, key.PayloadId, null));
        Store(new MessageQueued(entry, deliver.Origin), () =>
        {
            confirm.Done();
            Pump();
        });
    }

    private void HandlePayloadHeld(PayloadHeld h)
    {
        var key = (h.Topic, h.Id);
        if (_awaitingHeld is null || !_awaitingHeld.TryGetValue(key, out var waiting))
        {
            return;
        }

        if (!h.Stored)
        {
            // The topic no longer had the message at hand: send it along (this session still has it in memory).
            _context.TopicRegion.Tell(new HoldPayload(h.Topic, _clientId, h.Id, waiting.Message));
            return;
        }

        _awaitingHeld.Remove(key);
        foreach (var confirm in waiting.Confirms)
        {
            confirm.Done();
        }

        if (_awaitingHeld.Count == 0)
        {
            Timers.Cancel(HoldRetry.Instance);
        }

        if (_awaitingHeld.Count == 0 && _stopWhenHeld)
        {
            Context.Stop(Self);
        }
    }

    /// <summary>
    /// Holds still unanswered after <see cref="HoldRetryEvery"/> (the topic entity stopped after a failed write, or
    /// moved): asked again, with the message, which a topic that lost it stores anew. Their deliveries are confirmed
    /// late or, if the publisher gave up meanwhile, not at all; either way the entry does not wait forever.
    /// </summary>
    private void RetryHolds()
    {
        if (_awaitingHeld is null)
        {
            Timers.Cancel(HoldRetry.Instance);
            return;
        }

        foreach (var (key, waiting) in _awaitingHeld.ToList())
        {
            if (_payloadRefs?.ContainsKey(key) != true)
            {
                // The entry is gone already (acknowledged by the client, dropped): nothing left to hold for it, and
                // asking again would make this session a holder after its release.
                _awaitingHeld.Remove(key);
                waiting.Confirms.ForEach(confirm => confirm.Abandon());
                continue;
            }

            _context.TopicRegion.Tell(new HoldPayload(key.Topic, _clientId, key.Id, waiting.Message));
        }

        if (_awaitingHeld.Count == 0)
        {
            Timers.Cancel(HoldRetry.Instance);
            if (_stopWhenHeld)
            {
                Context.Stop(Self);
            }
        }
    }

    /// <summary>
    /// The session ends (expired, cleaned): deliveries still waiting for their topic's answer are confirmed to their
    /// publishers now, as every delivery to an ending session is (it deliberately drops them with its state).
    /// </summary>
    private void AbandonAwaitingHeld()
    {
        foreach (var (_, waiting) in _awaitingHeld ?? [])
        {
            foreach (var confirm in waiting.Confirms)
            {
                confirm.Abandon();
            }
        }

        _awaitingHeld?.Clear();
        Timers.Cancel(HoldRetry.Instance);
    }

    /// <summary>
    /// Hand-off (the shard moves): stop once every write is stored and the topics answered the holds in flight (at
    /// most <see cref="HandOffHeldWait"/>), so that the deliveries they wait for are confirmed to their publishers.
    /// </summary>
    private void StopAfterWritesAndHolds()
    {
        AfterWrites(() =>
        {
            if (_awaitingHeld is null || _awaitingHeld.Count == 0)
            {
                KeepStateOnStop();
                Context.Stop(Self);
                return;
            }

            _stopWhenHeld = true;
            Timers.StartSingleTimer(HandOffDeadline.Instance, HandOffDeadline.Instance, HandOffHeldWait);
        });
    }

    /// <summary>A delivery stored by reference: confirmed once both its own write and the topic's hold are stored.</summary>
    internal sealed class PendingConfirm(Deliver deliver)
    {
        private int _waiting = 2;

        public void Done()
        {
            if (--_waiting == 0)
            {
                Confirm(deliver);
            }
        }

        public void Abandon()
        {
            if (_waiting > 0)
            {
                _waiting = 0;
                Confirm(deliver);
            }
        }
    }

    private void HandleCheckHolds(CheckHolds c)
    {
        var notHeld = c.Ids.Where(id => _payloadRefs?.ContainsKey((c.Topic, id)) != true).ToList();
        Sender.Tell(new HoldsChecked(c.Topic, _clientId, notHeld));
        if (Unused)
        {
            Leave();
        }
    }

    private void ReleaseRefs(List<(string Topic, long Id)>? refs)
    {
        foreach (var group in (refs ?? []).GroupBy(r => r.Topic))
        {
            _context.TopicRegion.Tell(new ReleasePayloads(group.Key, _clientId, group.Select(r => r.Id).ToList()));
        }
    }

    private void DropRefs(QueuedRefsDropped d)
    {
        var ids = d.Ids.ToHashSet();
        bool Selected(QueuedMessage q) => q.PayloadId != 0 && q.Message.Topic == d.Topic && ids.Contains(q.PayloadId);
        foreach (var removed in _queue.RemoveWhere(Selected))
        {
            RefRemoved(removed);
        }

        // A released QoS 2 entry needs no payload any more (only PUBREL is sent again): it stays.
        foreach (var removed in _inflight.RemoveWhere(i => !i.Released && Selected(i.Message)))
        {
            RefRemoved(removed.Message);
        }
    }

    /// <summary>
    /// After the journal replay: asks the topics for the payloads of the entries held by reference. Releases of
    /// references removed by replayed events are sent again (they are idempotent; the first may have been lost).
    /// Returns false when there is nothing to fetch.
    /// </summary>
    private bool FetchPayloadsAfterRecovery()
    {
        _replayReleased = _released;
        _released = null;
        if (_payloadRefs is null || _payloadRefs.Count == 0)
        {
            ReleaseRefs(_replayReleased);
            _replayReleased = null;
            return false;
        }

        _fetching = _payloadRefs.Keys.GroupBy(k => k.Topic).ToDictionary(g => g.Key, g => g.Select(k => k.Id).ToList());
        foreach (var (topic, ids) in _fetching)
        {
            _context.TopicRegion.Tell(new FetchPayloads(topic, _clientId, ids));
        }

        Timers.StartPeriodicTimer(FetchRetry.Instance, FetchRetry.Instance, FetchRetryEvery);
        return true;
    }

    private void FetchingPayloads(object message)
    {
        switch (message)
        {
            case PayloadsFetched f:
                if (_fetching is null || !_fetching.ContainsKey(f.Topic))
                {
                    break; // an answer to a repeated request
                }

                FillPayloads(f);
                if (f.Last)
                {
                    _fetching.Remove(f.Topic);
                }

                if (_fetching.Count == 0)
                {
                    FinishFetching();
                }

                break;
            case FetchRetry:
                // A topic entity that cannot answer yet (its node left, storage is down): ask again.
                foreach (var (topic, ids) in _fetching!)
                {
                    _context.TopicRegion.Tell(new FetchPayloads(topic, _clientId, ids));
                }

                break;
            default:
                StashUnlessJournalStopped(message);
                break;
        }
    }

    private void FillPayloads(PayloadsFetched f)
    {
        var byId = new Dictionary<long, ReadOnlyMemory<byte>>();
        foreach (var p in f.Payloads)
        {
            byId[p.Id] = p.Payload;
            (_fetched ??= new()).Add((f.Topic, p.Id));
        }

        QueuedMessage Fill(QueuedMessage q) =>
            q.PayloadId != 0 && q.Message.Topic == f.Topic && byId.TryGetValue(q.PayloadId, out var payload)
                ? q with { Message = q.Message with { Payload = payload } }
                : q;
        _queue.Map(Fill);
        _inflight.Map(i => i with { Message = Fill(i.Message) });
    }

    private void FinishFetching()
    {
        Timers.Cancel(FetchRetry.Instance);
        _fetching = null;
        var missing = _payloadRefs!.Keys.Where(k => _fetched?.Contains(k) != true).ToList();
        _fetched = null;
        BecomeActive();
        foreach (var group in missing.GroupBy(k => k.Topic))
        {
            // Never confirmed to their publisher (the topic would hold them for this session otherwise).
            _log.Warning("Session {0}: {1} queued messages on {2} had no stored payload (not acknowledged to their publisher); dropped",
                _clientId, group.Count(), group.Key);
            Store(new QueuedRefsDropped(group.Key, group.Select(k => k.Id).ToList()));
        }

        ReleaseRefs(_replayReleased);
        _replayReleased = null;
        OnRecovered();
    }

    private sealed class HoldRetry
    {
        public static readonly HoldRetry Instance = new();
    }

    private sealed class HandOffDeadline
    {
        public static readonly HandOffDeadline Instance = new();
    }

    private sealed class FetchRetry
    {
        public static readonly FetchRetry Instance = new();
    }
}
