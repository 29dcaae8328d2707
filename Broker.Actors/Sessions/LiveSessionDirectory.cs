using Akka.Actor;

namespace Broker.Sessions;

/// <summary>
/// The live sessions of one node's <see cref="SessionHost"/>: each by client id and incarnation (where deliveries go),
/// the latest of each client id (management requests), and the owner of each (the client id's registry, or its session
/// entity guarding it) that the host keeps an eye on for it; one owner may hold many live sessions here. A pure type: the host applies what it answers (watch, unwatch, tell). Used on the host's
/// thread only.
/// <para>
/// It also keeps the dormant ones: clean sessions not started yet (<c>Sessions:StartCleanSessionsOnDemand</c>), each an
/// entry by its connection (the start that would have run, and its owner) until the connection needs its session (a
/// subscription, a QoS 2 message) or ends. A dormant entry is guarded by its owner as a live session is.
/// </para>
/// </summary>
public sealed class LiveSessionDirectory
{
    private readonly Dictionary<(string ClientId, long Incarnation), (IActorRef Session, LiveQueueGauge Gauge)> _live = new();
    private readonly Dictionary<IActorRef, (string ClientId, long Incarnation, IActorRef Owner)> _byRef = new();
    private readonly Dictionary<IActorRef, HashSet<IActorRef>> _guarded = new(); // owner -> its live sessions here
    private readonly Dictionary<string, IActorRef> _latest = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, (StartLiveSession Start, IActorRef Owner)> _dormant = new(); // by connection

    public int Count => _byRef.Count;

    /// <summary>A clean session that starts only when its connection needs it; <paramref name="owner"/> guards it meanwhile.</summary>
    public void AddDormant(StartLiveSession start, IActorRef owner)
    {
        var connection = start.Attach.Connection;
        _dormant[connection] = (start, owner);
        _latest[start.Attach.ClientId] = connection;
        Guard(owner, connection);
    }

    /// <summary>True when <paramref name="actor"/> is the connection of a dormant session here.</summary>
    public bool IsDormant(IActorRef actor) => _dormant.ContainsKey(actor);

    /// <summary>
    /// The dormant session of <paramref name="connection"/> starts now, or ends with its connection: forgets it and
    /// answers the start it was kept for, its owner, and whether that owner is no longer watched for anything here.
    /// False when the connection has no dormant session here.
    /// </summary>
    public bool RemoveDormant(IActorRef connection, out StartLiveSession start, out IActorRef owner, out bool ownerReleased)
    {
        ownerReleased = false;
        if (!_dormant.Remove(connection, out var entry))
        {
            start = null!;
            owner = null!;
            return false;
        }

        (start, owner) = entry;
        ownerReleased = Release(connection, owner) is not null;
        if (_latest.TryGetValue(start.Attach.ClientId, out var latest) && latest.Equals(connection))
        {
            _latest.Remove(start.Attach.ClientId);
        }

        return true;
    }

    /// <summary>A live session started for <paramref name="owner"/>, which guards it from now on.</summary>
    public void Add(IActorRef session, string clientId, long incarnation, IActorRef owner, LiveQueueGauge gauge)
    {
        _live[(clientId, incarnation)] = (session, gauge);
        _byRef[session] = (clientId, incarnation, owner);
        _latest[clientId] = session;
        Guard(owner, session);
    }

    private void Guard(IActorRef owner, IActorRef session)
    {
        if (!_guarded.TryGetValue(owner, out var sessions))
        {
            _guarded[owner] = sessions = new HashSet<IActorRef>();
        }

        sessions.Add(session);
    }

    public bool TryGet(string clientId, long incarnation, out (IActorRef Session, LiveQueueGauge Gauge) live) =>
        _live.TryGetValue((clientId, incarnation), out live);

    /// <summary>
    /// The client id's most recent live session on this node, if it still runs: a live session, or the connection of a
    /// dormant one (<see cref="IsDormant"/>).
    /// </summary>
    public bool TryGetLatest(string clientId, out IActorRef session) => _latest.TryGetValue(clientId, out session!);

    /// <summary>
    /// <paramref name="owner"/> guards <paramref name="session"/> now (it claimed its client id again). Answers the guard
    /// no longer to be watched for it, if any; false when the session has ended meanwhile.
    /// </summary>
    public bool SetOwner(IActorRef session, IActorRef owner, out IActorRef? released)
    {
        released = null;
        if (!_byRef.TryGetValue(session, out var key))
        {
            return false;
        }

        if (!key.Owner.Equals(owner))
        {
            released = Release(session, key.Owner);
            _byRef[session] = key with { Owner = owner };
        }

        Guard(owner, session);
        return true;
    }

    /// <summary>An owner stopped: the live sessions it held here, which must claim their client ids again.</summary>
    public IReadOnlyCollection<IActorRef> OwnerEnded(IActorRef owner) =>
        _guarded.Remove(owner, out var sessions) ? sessions : Array.Empty<IActorRef>();

    /// <summary>
    /// A live session ended: forgets it and answers its key and guard, and whether the guard is no longer watched for
    /// any session here (another live session of the same owner keeps it).
    /// </summary>
    public bool Remove(IActorRef session, out (string ClientId, long Incarnation, IActorRef Owner) key, out bool ownerReleased)
    {
        ownerReleased = false;
        if (!_byRef.Remove(session, out key))
        {
            return false;
        }

        _live.Remove((key.ClientId, key.Incarnation));
        ownerReleased = Release(session, key.Owner) is not null;
        if (_latest.TryGetValue(key.ClientId, out var latest) && latest.Equals(session))
        {
            _latest.Remove(key.ClientId);
        }

        return true;
    }

    private IActorRef? Release(IActorRef session, IActorRef owner)
    {
        if (_guarded.TryGetValue(owner, out var sessions) && sessions.Remove(session) && sessions.Count == 0)
        {
            _guarded.Remove(owner);
            return owner;
        }

        return null;
    }
}
