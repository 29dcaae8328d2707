using Akka.Actor;

namespace Broker.Routing;

/// <summary>
/// Payloads stored once for several persistent sessions (the flow is drawn in SharedPayloadProtocol.cs). A QoS 1/2
/// publish routed to two or more sessions with a payload of at least Storage:SharedPayloadMinBytes is offered to them
/// under an id; each persistent session journals a reference and asks the topic to hold the payload for it. The
/// first holder journals the message (<see cref="SharedPayloadStored"/>); later holders and releases are journaled in
/// batches (<see cref="SharedPayloadHoldersChanged"/>, one event per journal round trip). A session confirms the
/// delivery to the publisher only once the topic answered <see cref="PayloadHeld"/>, that is once the payload and
/// that session as its holder are stored. The payload goes when its last holder released it.
/// <para>
/// Ids are unique across incarnations of the entity: a random 31-bit prefix per incarnation and a counter, so that
/// a reference journaled by a session just before a crash can never name another message after recovery.
/// </para>
/// </summary>
public sealed partial class TopicEntity
{
    private const int MaxOffered = 1000;
    private const long MaxOfferedBytes = 16 * 1024 * 1024;
    private const long OfferedForMs = 30_000;
    private const int MaxHolderChangesPerEvent = 2000;
    private const int MaxFetchedBytesPerMessage = 64 * 1024; // under Akka.Remote's default frame size (128,000 bytes)

    private readonly Dictionary<long, StoredPayload> _payloads = new();
    private readonly Dictionary<long, MqttApplicationMessage> _offered = new();
    private readonly Queue<(long Id, long AtMs)> _offeredOrder = new();
    private readonly List<HolderChange> _holderChanges = new(); // applied in memory, not yet journaled
    private readonly List<Action> _afterHolderChanges = new(); // replies that wait for those changes to be stored
    private long _offeredBytes;
    private bool _payloadRowsSinceSnapshot; // payload events were journaled since the last snapshot
    private long _idPrefix;
    private uint _idCounter;

    private sealed record StoredPayload(MqttApplicationMessage Message, HashSet<string> Holders);

    /// <summary>Keeps the message at hand under a new id while the sessions it was routed to ask to hold it.</summary>
    private long Offer(MqttApplicationMessage message)
    {
        if (_idPrefix == 0 || _idCounter == uint.MaxValue)
        {
            _idPrefix = (long)Random.Shared.Next(1, int.MaxValue) << 32;
            _idCounter = 0;
        }

        var id = _idPrefix | ++_idCounter;
        var now = Environment.TickCount64;
        _offered[id] = message;
        _offeredOrder.Enqueue((id, now));
        _offeredBytes += message.Payload.Length;
        while (_offeredOrder.Count > 0 &&
               (_offeredOrder.Count > MaxOffered || _offeredBytes > MaxOfferedBytes || now - _offeredOrder.Peek().AtMs > OfferedForMs))
        {
            var (old, _) = _offeredOrder.Dequeue();
            if (_offered.Remove(old, out var m))
            {
                _offeredBytes -= m.Payload.Length;
            }
        }

        return id;
    }

    private void HandleHold(HoldPayload h)
    {
        var replyTo = Sender;
        var topic = _topic;
        if (_payloads.TryGetValue(h.Id, out var stored))
        {
            if (stored.Holders.Add(h.ClientId))
            {
                _holderChanges.Add(new HolderChange(h.Id, h.ClientId, true));
            }

            AfterHolderChanges(() => replyTo.Tell(new PayloadHeld(topic, h.Id, true), ActorRefs.NoSender));
            FlushHolderChanges(whenIdle: true);
            return;
        }

        var message = h.Message ?? _offered.GetValueOrDefault(h.Id);
        if (message is null)
        {
            // No longer at hand (offered too long ago, or this entity restarted): the session sends it along.
            replyTo.Tell(new PayloadHeld(topic, h.Id, false), ActorRefs.NoSender);
            return;
        }

        // Journal order follows memory order: holder changes decided before this payload was stored go first.
        FlushHolderChanges(whenIdle: false);
        var e = new SharedPayloadStored(h.Id, message, [h.ClientId]);
        Apply(e);
        _payloadRowsSinceSnapshot = true;
        Store(e, () => replyTo.Tell(new PayloadHeld(topic, h.Id, true), ActorRefs.NoSender));
    }

    private void HandleRelease(ReleasePayloads r)
    {
        foreach (var id in r.Ids)
        {
            RemoveHolder(id, r.ClientId);
        }

        FlushHolderChanges(whenIdle: true);
    }

    private void HandleHoldsChecked(HoldsChecked c)
    {
        foreach (var id in c.NotHeld)
        {
            RemoveHolder(id, c.ClientId);
        }

        FlushHolderChanges(whenIdle: true);
    }

    private void RemoveHolder(long id, string clientId)
    {
        if (_payloads.TryGetValue(id, out var stored) && stored.Holders.Remove(clientId))
        {
            _holderChanges.Add(new HolderChange(id, clientId, false));
            if (stored.Holders.Count == 0)
            {
                _payloads.Remove(id);
            }
        }
    }

    /// <summary>
    /// A recovering session asks for its payloads. Asking makes it a holder of those found (its reference is
    /// journaled; its hold may have been lost with a crash), so the answer goes once that is stored. Ids not found
    /// were never confirmed to a publisher for this session; the session drops them.
    /// </summary>
    private void HandleFetch(FetchPayloads f)
    {
        var replyTo = Sender;
        var found = new List<FetchedPayload>();
        foreach (var id in f.Ids)
        {
            if (_payloads.TryGetValue(id, out var stored))
            {
                found.Add(new FetchedPayload(id, stored.Message.Payload));
                if (stored.Holders.Add(f.ClientId))
                {
                    _holderChanges.Add(new HolderChange(id, f.ClientId, true));
                }
            }
        }

        var topic = _topic;
        AfterHolderChanges(() => SendFetched(replyTo, topic, found));
        FlushHolderChanges(whenIdle: true);
    }

    private static void SendFetched(IActorRef replyTo, string topic, List<FetchedPayload> found)
    {
        var chunk = new List<FetchedPayload>();
        var bytes = 0;
        foreach (var p in found)
        {
            if (chunk.Count > 0 && bytes + p.Payload.Length > MaxFetchedBytesPerMessage)
            {
                replyTo.Tell(new PayloadsFetched(topic, chunk, false), ActorRefs.NoSender);
                chunk = new List<FetchedPayload>();
                bytes = 0;
            }

            chunk.Add(p);
            bytes += p.Payload.Length;
        }

        replyTo.Tell(new PayloadsFetched(topic, chunk, true), ActorRefs.NoSender);
    }

    /// <summary>
    /// After recovery: a holder may have released while the release was lost (a crash), or ended (expired, cleaned)
    /// without its release arriving. Every holder is asked once which of its payloads it still references.
    /// </summary>
    private void CheckHolders()
    {
        if (_payloads.Count == 0)
        {
            return;
        }

        var byHolder = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        foreach (var (id, stored) in _payloads)
        {
            foreach (var holder in stored.Holders)
            {
                if (!byHolder.TryGetValue(holder, out var ids))
                {
                    byHolder[holder] = ids = new List<long>();
                }

                ids.Add(id);
            }
        }

        foreach (var (holder, ids) in byHolder)
        {
            _context.SessionRegion.Tell(new CheckHolds(holder, _topic, ids));
        }
    }

    private void AfterHolderChanges(Action action)
    {
        if (_holderChanges.Count > 0)
        {
            _afterHolderChanges.Add(action);
            return;
        }

        _journal.AfterWrites(action);
    }

    /// <summary>
    /// Journals the pending holder changes as one event: at once when <paramref name="whenIdle"/> is false, otherwise
    /// only while no write is pending (the next <see cref="Persistence.JournalDone"/> flushes what gathered meanwhile).
    /// </summary>
    private void FlushHolderChanges(bool whenIdle)
    {
        if (_holderChanges.Count == 0 ||
            (whenIdle && _journal.PendingWrites > 0 && _holderChanges.Count < MaxHolderChangesPerEvent))
        {
            return;
        }

        var e = new SharedPayloadHoldersChanged(_holderChanges.ToList());
        var replies = _afterHolderChanges.ToList();
        _holderChanges.Clear();
        _afterHolderChanges.Clear();
        _payloadRowsSinceSnapshot = true;
        Store(e, replies.Count == 0 ? null : () => replies.ForEach(reply => reply()));
    }

    /// <summary>
    /// The last stored payload went while the topic keeps subscribers (so its journal is not deleted): a snapshot
    /// now (small: no payload in it) deletes the payload rows at once instead of after Storage:SnapshotEvery events.
    /// </summary>
    private bool PayloadRowsToDrop() => _payloadRowsSinceSnapshot && _payloads.Count == 0 && _holderChanges.Count == 0;

    private void Apply(SharedPayloadStored p) =>
        _payloads[p.Id] = new StoredPayload(p.Message, new HashSet<string>(p.Holders, StringComparer.Ordinal));

    private void Apply(SharedPayloadHoldersChanged c)
    {
        foreach (var change in c.Changes)
        {
            if (!_payloads.TryGetValue(change.Id, out var stored))
            {
                continue;
            }

            if (change.Added)
            {
                stored.Holders.Add(change.ClientId);
            }
            else if (stored.Holders.Remove(change.ClientId) && stored.Holders.Count == 0)
            {
                _payloads.Remove(change.Id);
            }
        }
    }

    private List<SharedPayloadStored> SnapshotPayloads() =>
        _payloads.Select(p => new SharedPayloadStored(p.Key, p.Value.Message, p.Value.Holders.ToList())).ToList();
}
