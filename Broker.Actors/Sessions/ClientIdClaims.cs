namespace Broker.Sessions;

/// <summary>
/// Who holds each client id of one session shard: the rules of <see cref="ClientIdRegistry"/>, a pure type (the
/// registry carries out what it answers). A client id is held in one of two ways:
/// <list type="bullet">
/// <item>by a <b>claim</b>: a clean session (Clean Start, expiry 0) running beside its connection, and nothing stored
/// for the id. The claim is an entry here, not an actor: it names the connection, the live session's incarnation and
/// the session host of the connection's node.</item>
/// <item>by the client id's <b>session entity</b>: everything else (a persistent session, a stored session being
/// discarded). Each message handed to the entity is numbered; the entity reports the last number it saw when it stops,
/// and the id is free again only when no later message was handed to it (a stopping entity is started again for it).</item>
/// </list>
/// Every CONNECT of a client id and every claim of a live session whose registry moved pass through here, one at a
/// time, so a client id is held once in the cluster: a newer connection takes over an older one [MQTT-3.1.4-3].
/// </summary>
/// <typeparam name="TRef">An actor reference (opaque here).</typeparam>
public sealed class ClientIdClaims<TRef>
    where TRef : class
{
    private readonly Dictionary<string, Claim> _claims = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _held = new(StringComparer.Ordinal);
    private long _seq;

    /// <summary>A clean session beside its connection holds the client id.</summary>
    public sealed class Claim(TRef connection, long incarnation, TRef host)
    {
        public TRef Connection { get; } = connection;

        public long Incarnation { get; } = incarnation;

        public TRef Host { get; } = host;
    }

    public int Claims => _claims.Count;

    public int HeldByEntities => _held.Count;

    public bool TryGetClaim(string clientId, out Claim claim) => _claims.TryGetValue(clientId, out claim!);

    /// <summary>
    /// A connection attaches. <paramref name="beside"/>: its session would run beside it (clean, expiry 0).
    /// <paramref name="stored"/>: whether anything is stored for the id, once known (null: not asked yet).
    /// </summary>
    public ClaimDecision<TRef> Attach(string clientId, TRef connection, bool beside, bool? stored, long newIncarnation, TRef host)
    {
        if (_held.ContainsKey(clientId))
        {
            return ClaimDecision<TRef>.Forward(Hand(clientId), takenOver: null);
        }

        if (_claims.TryGetValue(clientId, out var claim))
        {
            if (claim.Connection.Equals(connection))
            {
                return ClaimDecision<TRef>.Ignore; // the same connection asked again (it repeats an unanswered attach)
            }

            if (beside)
            {
                // Nothing is stored while a clean session holds the id: the new one takes over at once.
                _claims[clientId] = new Claim(connection, newIncarnation, host);
                return ClaimDecision<TRef>.Start(newIncarnation, takenOver: claim.Connection);
            }

            _claims.Remove(clientId);
            return ClaimDecision<TRef>.Forward(Hand(clientId), takenOver: claim.Connection);
        }

        if (!beside || stored == true)
        {
            return ClaimDecision<TRef>.Forward(Hand(clientId), takenOver: null);
        }

        if (stored is null)
        {
            return ClaimDecision<TRef>.AskStored;
        }

        _claims[clientId] = new Claim(connection, newIncarnation, host);
        return ClaimDecision<TRef>.Start(newIncarnation, takenOver: null);
    }

    /// <summary>
    /// A live session whose registry stopped (its node left or failed) claims its client id again from this one:
    /// granted unless another connection holds the id by now (or the entity holds it: then the entity decides).
    /// </summary>
    public ClaimDecision<TRef> Reclaim(string clientId, TRef connection, long incarnation, bool? stored, TRef host)
    {
        if (_held.ContainsKey(clientId))
        {
            return ClaimDecision<TRef>.Forward(Hand(clientId), takenOver: null);
        }

        if (_claims.TryGetValue(clientId, out var claim))
        {
            return claim.Incarnation == incarnation ? ClaimDecision<TRef>.Granted : ClaimDecision<TRef>.Refused;
        }

        if (stored is null)
        {
            return ClaimDecision<TRef>.AskStored;
        }

        if (stored == true)
        {
            return ClaimDecision<TRef>.Forward(Hand(clientId), takenOver: null);
        }

        _claims[clientId] = new Claim(connection, incarnation, host);
        return ClaimDecision<TRef>.Granted;
    }

    /// <summary>The live session of <paramref name="incarnation"/> ended: its claim (if it is still the holder) goes.</summary>
    public bool Ended(string clientId, long incarnation)
    {
        if (_claims.TryGetValue(clientId, out var claim) && claim.Incarnation == incarnation)
        {
            _claims.Remove(clientId);
            return true;
        }

        return false;
    }

    /// <summary>The client id's entity stopped having seen the message numbered <paramref name="lastSeen"/>.</summary>
    public bool EntityStopped(string clientId, long lastSeen)
    {
        if (_held.TryGetValue(clientId, out var handed) && handed == lastSeen)
        {
            _held.Remove(clientId);
            return true;
        }

        return false; // a later message was handed to it: it starts again with that one
    }

    /// <summary>A node left the cluster: the claims of connections on it go (their live sessions ended with it).</summary>
    public int NodeRemoved(Func<TRef, bool> onNode)
    {
        List<string>? gone = null;
        foreach (var (clientId, claim) in _claims)
        {
            if (onNode(claim.Host))
            {
                (gone ??= new List<string>()).Add(clientId);
            }
        }

        foreach (var clientId in gone ?? [])
        {
            _claims.Remove(clientId);
        }

        return gone?.Count ?? 0;
    }

    /// <summary>Every host that runs a live session claimed here (told when the registry stops).</summary>
    public IEnumerable<TRef> Hosts() => _claims.Values.Select(c => c.Host).Distinct();

    private long Hand(string clientId)
    {
        var seq = ++_seq;
        _held[clientId] = seq;
        return seq;
    }
}

public enum ClaimAction : byte
{
    /// <summary>Hand the message to the client id's session entity, numbered <see cref="ClaimDecision{TRef}.Seq"/>.</summary>
    Forward,

    /// <summary>Start the live session (<see cref="ClaimDecision{TRef}.Incarnation"/>) beside the connection.</summary>
    Start,

    /// <summary>Ask whether anything is stored for the client id, then decide again (the message waits).</summary>
    AskStored,

    /// <summary>Nothing to do (a repeated attach).</summary>
    Ignore,

    /// <summary>A live session's claim is granted.</summary>
    Granted,

    /// <summary>A live session's claim is refused: another connection holds the id (its session is taken over).</summary>
    Refused,
}

/// <summary>What <see cref="ClientIdClaims{TRef}"/> decided; <see cref="TakenOver"/>: a connection to close with 0x8E first.</summary>
public readonly record struct ClaimDecision<TRef>(ClaimAction Action, long Seq, long Incarnation, TRef? TakenOver)
    where TRef : class
{
    public static ClaimDecision<TRef> Forward(long seq, TRef? takenOver) => new(ClaimAction.Forward, seq, 0, takenOver);

    public static ClaimDecision<TRef> Start(long incarnation, TRef? takenOver) => new(ClaimAction.Start, 0, incarnation, takenOver);

    public static ClaimDecision<TRef> AskStored => new(ClaimAction.AskStored, 0, 0, null);

    public static ClaimDecision<TRef> Ignore => new(ClaimAction.Ignore, 0, 0, null);

    public static ClaimDecision<TRef> Granted => new(ClaimAction.Granted, 0, 0, null);

    public static ClaimDecision<TRef> Refused => new(ClaimAction.Refused, 0, 0, null);
}
