using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Inbound QoS 2 of a session as a pure state machine (MQTT-4.3.3, method B of the spec's figure 4.3), with exactly
/// once across moves of the session: the session entity applies its journal events here and asks what each packet
/// means; it owns the journal, the routing and the packets.
/// <code>
///   PUBLISH P ──► journal Pending(P, seq) ──► route (origin seq) ──► all stored ──► PUBREC, journal Stored(P)
///                        └─ session moves or dies before Stored ──► recovered: route Pending(P, seq) again
///   PUBREL P  ──► journal Released(P) ──► PUBCOMP
/// </code>
/// A persistent session journals a message as pending under an origin (this session's random stream and the next
/// sequence number) before routing it; if it stops before every subscriber stored it, the recovered session routes
/// it again under the same origin and subscribers that took it already recognise it (<see cref="SeenOrigins"/>).
/// Every routed origin carries the lowest sequence number that may still be routed again (<see cref="_unsettled"/>),
/// so that subscribers forget the rest; a sequence number leaves it once Stored or Released is journaled. PUBREC does
/// not wait for Stored: until it is journaled the pending entry answers for the message, and a PUBREL for a message a
/// recovered session routes again releases it. A clean session routes at once, without an origin.
/// </summary>
public sealed class InboundQos2Flow
{
    private readonly HashSet<ushort> _held = new(); // stored everywhere, PUBREC sent: a PUBLISH again only gets PUBREC
    private readonly HashSet<ushort> _routing = new(); // on their way to the subscribers
    private readonly Dictionary<ushort, InboundQos2Pending> _pending = new();
    private readonly SortedSet<long> _unsettled = new();
    private HashSet<ushort>? _releasedWhileRouting;

    public enum PublishAction
    {
        /// <summary>Held already: answer PUBREC again, route nothing.</summary>
        PubRecAgain,

        /// <summary>Its first copy is still being routed: PUBREC follows once it is stored.</summary>
        AlreadyRouting,

        /// <summary>Pending from before (resent with DUP, or after a recovery): route it again under its origin.</summary>
        RouteAgain,

        /// <summary>A clean session: route it now, without an origin.</summary>
        Route,

        /// <summary>A persistent session: journal the new pending entry, then route it.</summary>
        JournalPending,
    }

    public enum ReleaseAction
    {
        /// <summary>Not held: PUBCOMP "Packet Identifier not found" (v5).</summary>
        NotFound,

        /// <summary>Held: journal Released, then PUBCOMP.</summary>
        Release,

        /// <summary>PUBREC went before a recovery and the message is pending again: journal Released, then PUBCOMP.</summary>
        ReleasePending,
    }

    public long OriginStream { get; private set; }

    public long OriginSeq { get; private set; }

    public IReadOnlyCollection<ushort> Held => _held;

    public IEnumerable<InboundQos2Pending> Pending => _pending.Values;

    public int PendingCount => _pending.Count;

    public bool IsPending(ushort packetId) => _pending.ContainsKey(packetId);

    public bool TryGetPending(ushort packetId, out InboundQos2Pending pending) => _pending.TryGetValue(packetId, out pending!);

    /// <summary>Applies a journaled (or, for a clean session, in-memory) event.</summary>
    public void Apply(ISessionEvent e)
    {
        switch (e)
        {
            case InboundQos2Pending p:
                _pending[p.PacketId] = p;
                OriginStream = p.Stream;
                OriginSeq = Math.Max(OriginSeq, p.Seq);
                break;
            case InboundQos2Stored s:
                _held.Add(s.PacketId);
                _pending.Remove(s.PacketId);
                break;
            case InboundQos2Released r:
                _held.Remove(r.PacketId);
                _pending.Remove(r.PacketId);
                break;
        }
    }

    public void Restore(IEnumerable<ushort> held, IEnumerable<InboundQos2Pending> pending, long originStream, long originSeq)
    {
        _held.UnionWith(held);
        foreach (var p in pending)
        {
            _pending[p.PacketId] = p;
        }

        OriginStream = originStream;
        OriginSeq = originSeq;
    }

    /// <summary>Clean Start: nothing held, pending or unsettled (the origin stream and sequence go on).</summary>
    public void Clear()
    {
        _held.Clear();
        _pending.Clear();
        _unsettled.Clear();
    }

    /// <summary>A PUBLISH with <paramref name="packetId"/>; for <see cref="PublishAction.JournalPending"/>, <paramref name="pending"/> is the entry to journal.</summary>
    public PublishAction OnPublish(ushort packetId, MqttApplicationMessage message, bool persistent, Func<long> newStream, out InboundQos2Pending? pending)
    {
        pending = null;
        if (_held.Contains(packetId))
        {
            return PublishAction.PubRecAgain;
        }

        if (!_routing.Add(packetId))
        {
            return PublishAction.AlreadyRouting;
        }

        if (_pending.TryGetValue(packetId, out var known))
        {
            pending = known;
            return PublishAction.RouteAgain;
        }

        if (!persistent)
        {
            return PublishAction.Route;
        }

        pending = new InboundQos2Pending(packetId, OriginStream != 0 ? OriginStream : newStream(), OriginSeq + 1, message);
        _unsettled.Add(pending.Seq);
        return PublishAction.JournalPending;
    }

    /// <summary>A pending entry was journaled: true when it is still the one to route (a Clean Start may have discarded it meanwhile).</summary>
    public bool StillPending(InboundQos2Pending pending)
    {
        if (_pending.TryGetValue(pending.PacketId, out var current) && current.Seq == pending.Seq)
        {
            return true;
        }

        _routing.Remove(pending.PacketId);
        return false;
    }

    /// <summary>The origin a pending message is routed under, with the lowest sequence number that may still be routed again.</summary>
    public MessageOrigin OriginFor(InboundQos2Pending pending)
    {
        _unsettled.Add(pending.Seq);
        return new MessageOrigin(pending.Stream, pending.Seq, _unsettled.Min);
    }

    /// <summary>After recovery: the pending messages to route again, oldest first (those not already on their way).</summary>
    public List<InboundQos2Pending> RouteRecovered()
    {
        var pending = _pending.Values.OrderBy(p => p.Seq).ToList();
        foreach (var p in pending)
        {
            _unsettled.Add(p.Seq);
        }

        return pending.Where(p => _routing.Add(p.PacketId)).ToList();
    }

    /// <summary>
    /// Every subscriber stored it: true when the session journals Stored (<paramref name="seq"/>: its origin's sequence
    /// number, 0 without one) and sends PUBREC; false when the client released it meanwhile (nothing more to do).
    /// </summary>
    public bool OnStored(ushort packetId, out long seq)
    {
        _routing.Remove(packetId);
        seq = _pending.TryGetValue(packetId, out var pending) ? pending.Seq : 0;
        return _releasedWhileRouting?.Remove(packetId) != true;
    }

    /// <summary>Stored or Released is journaled: subscribers may forget the origin.</summary>
    public void Settled(long seq) => _unsettled.Remove(seq);

    /// <summary>
    /// Storage did not complete in time or was refused: true when the client must hear of it (the caller journals
    /// Released first when <paramref name="pending"/> is set and the client can be told by PUBREC 0x80/0x97, v5);
    /// false when the client released it meanwhile.
    /// </summary>
    public bool OnFailed(ushort packetId, bool canRefuse, out InboundQos2Pending? pending)
    {
        pending = null;
        if (_releasedWhileRouting?.Remove(packetId) == true)
        {
            _routing.Remove(packetId);
            return false;
        }

        if (canRefuse && _pending.TryGetValue(packetId, out var p))
        {
            pending = p; // routing stops once Released is journaled (StopRouting)
            return true;
        }

        _routing.Remove(packetId);
        return true;
    }

    public void StopRouting(ushort packetId) => _routing.Remove(packetId);

    /// <summary>Marks a pending message as on its way again: false when it is already.</summary>
    public bool StartRouting(ushort packetId) => _routing.Add(packetId);

    public bool IsRouting(ushort packetId) => _routing.Contains(packetId);

    /// <summary>A PUBREL; for <see cref="ReleaseAction.ReleasePending"/>, <paramref name="seq"/> is the origin's sequence number.</summary>
    public ReleaseAction OnRelease(ushort packetId, out long seq)
    {
        seq = 0;
        if (_held.Contains(packetId))
        {
            return ReleaseAction.Release;
        }

        if (!_pending.TryGetValue(packetId, out var pending))
        {
            return ReleaseAction.NotFound;
        }

        if (_routing.Contains(packetId))
        {
            (_releasedWhileRouting ??= new()).Add(packetId);
        }

        seq = pending.Seq;
        return ReleaseAction.ReleasePending;
    }
}
