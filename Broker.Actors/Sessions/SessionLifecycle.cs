using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// The lifecycle rules of a session, apart from the entity that carries them out (SessionEntity.Connection.cs,
/// SessionEntity.Resume.cs, SessionEntity.Passivation.cs): what an attach, a DISCONNECT and a lost connection do to
/// the session, when its will goes out, when it expires, when its attach record may wait and when it may leave memory.
/// Pure: facts and the time come in, a plan goes out; the entity journals, indexes, tells and starts timers from it.
/// <code>
///   (none) ──CONNECT──► attached ──connection lost, expiry 0──────────────────────► ended (removed)
///                        ▲   │                                                        ▲
///                        │   └──connection lost, expiry > 0──► detached ──expiry──────┘
///                        └────── CONNECT within the expiry (Session Present 1) ──┘
///
///   leaving attached: DISCONNECT 0x00 removes the will [MQTT-3.14.4-3]; DISCONNECT 0x04 or a lost connection keeps
///     it, and it goes out at once (no Will Delay Interval), after min(Will Delay Interval, expiry), or as the session
///     ends, whichever comes first (MQTT-v5.0 3.1.3.2.2). A DISCONNECT may change the expiry (MQTT-v5.0 3.14.2.2.2).
///   takeover [MQTT-3.1.4-3]: a CONNECT while attached closes the old connection (0x8E); its will goes out unless the
///     session continues (no Clean Start) and the will has a delay (MQTT-v5.0 3.1.2.5).
///   Clean Start [MQTT-3.1.2-4]: the old session is discarded, Session Present 0 [MQTT-3.2.2-2]; otherwise a session
///     that exists is resumed, Session Present 1 [MQTT-3.2.2-3].
/// </code>
/// "The Server delays publishing the Client's Will Message until the Will Delay Interval has passed or the Session
/// ends, whichever happens first. If a new Network Connection to this Session is made before the Will Delay Interval
/// has passed, the Server MUST NOT send the Will Message [MQTT-3.1.3-9]" (MQTT-v5.0 3.1.3.2.2). "The Client and Server
/// MUST store the Session State after the Network Connection is closed if the Session Expiry Interval is greater than
/// 0 [MQTT-3.1.2-23]" (MQTT-v5.0 3.1.2.11).
/// </summary>
public static class SessionLifecycle
{
    /// <summary>The expiry that means "never" (MQTT-v5.0 3.1.2.11.2: 0xFFFFFFFF).</summary>
    public const uint NeverExpires = uint.MaxValue;

    /// <summary>
    /// A CONNECT reaches the session, which is not the same connection asking again (the entity answers that itself).
    /// <paramref name="otherConnectionAttached"/>: another connection holds the session (a takeover).
    /// <paramref name="maxInflight"/>: the server's in-flight limit.
    /// </summary>
    /// <summary>
    /// A clean session (Clean Start, expiry 0) stores nothing and ends with its connection: with
    /// <c>Sessions:CleanSessionsOnConnectionNode</c> it runs beside its connection, its client id held by a claim.
    /// </summary>
    public static bool RunsBesideConnection(ConnectionInfo info, bool cleanSessionsOnConnectionNode) =>
        info.CleanStart && info.SessionExpiry == 0 && cleanSessionsOnConnectionNode;

    /// <summary>
    /// A clean session beside its connection (<paramref name="clean"/>: started without a state handed over) waits to
    /// start until its client needs it (<c>Sessions:StartCleanSessionsOnDemand</c>), unless the CONNECT carries a will:
    /// the session publishes the will when the connection is lost, so it runs from the start.
    /// </summary>
    public static bool StartsOnDemand(bool enabled, bool clean, ConnectionInfo info) =>
        enabled && clean && info.Will is null;

    /// <summary>
    /// A persistent session runs beside its client's connection when that connection is on another node than its
    /// entity (<c>Sessions:PersistentSessionsFollowClient</c>), once the attach is stored and nothing is under way
    /// (<see cref="QuietForMove"/>); otherwise it stays with its entity for this connection.
    /// </summary>
    public static bool FollowsClient(bool enabled, bool persistent, bool journaled, bool connectionOnOtherNode, in MoveFacts work) =>
        enabled && persistent && journaled && connectionOnOtherNode && QuietForMove(work);

    /// <summary>Nothing under way: the session's snapshot is all of it, and no answer is due to the actor that holds it now.</summary>
    public static bool QuietForMove(in MoveFacts w) =>
        w.PendingWrites == 0 && !w.Ending && !w.FetchingPayloads && w.AwaitingPayloadHolds == 0 && w.PendingSubscribes == 0 &&
        w.InboundRouting == 0 && w.InboundPending == 0 && w.WakeRegistrations == 0 && !w.AttachRecordPending && w.HeldPublishers == 0;

    /// <summary>
    /// A session beside its connection may be handed back to its entity: as <see cref="QuietForMove"/>, except that
    /// inbound QoS 2 messages still being routed do not hold it. They are journaled as pending, and the entity routes
    /// them again once the state is back, as after any recovery (their subscribers take each once); their routing may
    /// wait for a node that is gone, and the hand-back must not.
    /// </summary>
    public static bool QuietForReturn(in MoveFacts w) => QuietForMove(w with { InboundRouting = 0, InboundPending = 0 });

    public static AttachPlan PlanAttach(in SessionFacts s, ConnectionInfo info, bool otherConnectionAttached, int maxInflight, long nowMs)
    {
        // [MQTT-3.1.4-3] the old connection is closed. Its will goes out unless the session continues on the new
        // connection within the will delay (MQTT-v5.0 3.1.2.5): Clean Start ends the old session at once.
        var publishWillNow = otherConnectionAttached && s.Will is not null && (info.CleanStart || s.Will.DelayInterval == 0);

        // [MQTT-3.2.2-2] Clean Start: Session Present 0; [MQTT-3.2.2-3] otherwise 1 when a session exists.
        var present = !info.CleanStart && s.HasState;

        // [MQTT-3.1.2-4] Clean Start discards the existing session. Deleting what the journal holds is not enough for a
        // new persistent session: its SessionCleared marker also protects a recovery that would otherwise replay
        // events whose deletion failed.
        var discard = info.CleanStart && (s.HasState || s.Subscriptions > 0);
        var persistentBefore = s.Persistent;
        var discardIndex = DiscardedIndex.None;
        if (discard)
        {
            persistentBefore = s.Journaled && info.SessionExpiry > 0;
            if (s.Journaled && !s.Live)
            {
                discardIndex = info.SessionExpiry > 0 ? DiscardedIndex.RemoveRoutes : DiscardedIndex.RemoveSession;
            }
        }

        var becomesPersistent = info.SessionExpiry > 0 && !persistentBefore;
        var persistent = info.SessionExpiry > 0;

        // A new persistent session (or one whose expiry shrank, or one that starts to journal) stores a deadline: the
        // earliest it could expire, so that it is found on time even if its node fails while the client is connected.
        var storeDeadline = !s.Live && persistent &&
                            (!present || info.SessionExpiry < s.ExpirySeconds || becomesPersistent);

        return new AttachPlan(
            TakeOverOld: otherConnectionAttached,
            PublishWillNow: publishWillNow,
            Present: present,
            DiscardState: discard,
            DeleteJournal: discard && s.Journaled,
            DiscardIndex: discardIndex,
            PersistentAfterDiscard: persistentBefore,
            Persistent: persistent,
            BecomesPersistent: becomesPersistent,
            JournalSubscriptions: becomesPersistent && !info.CleanStart,
            DeferRecord: MayDeferAttachRecord(s, info, present, becomesPersistent, otherConnectionAttached, nowMs),
            StoreDeadline: storeDeadline,
            InflightCapacity: Math.Max(1, Math.Min(info.ReceiveMaximum, maxInflight)),
            WorthLogging: info.SessionExpiry > 0 || present);
    }

    /// <summary>
    /// A plain resume may attach without storing its record before the CONNACK (SessionEntity.Resume.cs): Clean Start
    /// 0 with the same expiry and no will, nothing queued or in flight, nothing taken over, a journaled persistent
    /// session whose client comes back within a quarter of its expiry (or whose session never expires).
    /// </summary>
    public static bool MayDeferAttachRecord(
        in SessionFacts s, ConnectionInfo info, bool present, bool becomesPersistent, bool wasConnected, long nowMs)
    {
        if (!present || !s.Persistent || !s.Journaled || s.Live || becomesPersistent || wasConnected || s.AttachRecordPending ||
            info.CleanStart || info.Will is not null || s.Will is not null || info.SessionExpiry != s.ExpirySeconds ||
            s.DetachedAtMs <= 0 || s.Queued > 0 || s.Inflight > 0)
        {
            return false;
        }

        if (s.ExpirySeconds == NeverExpires)
        {
            return true; // never expires: only the DUP flag depends on the record, and it is stored before any send
        }

        var away = nowMs - s.DetachedAtMs;
        return away >= 0 && away <= s.ExpirySeconds * 250L;
    }

    /// <summary>
    /// When a deferred attach record is stored at the latest: a quarter of the expiry, at most a minute, spread over its
    /// second half by <paramref name="random01"/> (in [0, 1)) so that reconnecting clients do not store together.
    /// </summary>
    public static TimeSpan AttachRecordDelay(uint expirySeconds, double random01)
    {
        var max = Math.Min(expirySeconds * 250.0, 60_000.0);
        return TimeSpan.FromMilliseconds(max * (0.5 + (random01 / 2)));
    }

    /// <summary>
    /// A DISCONNECT: <paramref name="newExpiry"/> (MQTT-v5.0 3.14.2.2.2) replaces the expiry when it differs, a normal
    /// DISCONNECT (<paramref name="publishWill"/> false: reason 0x00) removes the will [MQTT-3.14.4-3] while 0x04
    /// (Disconnect with Will Message) keeps it, then the connection counts as lost with the settings that result.
    /// </summary>
    public static DetachPlan PlanDetach(in SessionFacts s, bool publishWill, uint? newExpiry, long nowMs)
    {
        uint? storeExpiry = newExpiry is { } e && e != s.ExpirySeconds ? e : null;
        var dropWill = !publishWill && s.Will is not null;
        var after = s with { ExpirySeconds = storeExpiry ?? s.ExpirySeconds, Will = dropWill ? null : s.Will };
        return new DetachPlan(storeExpiry, dropWill, PlanConnectionLost(after, nowMs));
    }

    /// <summary>
    /// The connection is gone (after a DISCONNECT, or without one: then the will goes out, as for any abnormal close).
    /// Expiry 0 ends the session now (MQTT-v5.0 3.1.2.11.2); otherwise it waits for its client, its expiry counted from
    /// now, and its will goes out after the shorter of the Will Delay Interval and the expiry (MQTT-v5.0 3.1.3.2.2).
    /// </summary>
    public static ConnectionLostPlan PlanConnectionLost(in SessionFacts s, long nowMs)
    {
        if (s.ExpirySeconds == 0)
        {
            return new ConnectionLostPlan(
                EndSession: true, DetachedAtMs: 0, StoreDeadline: false, DeadlineMs: nowMs,
                Will: s.Will is null ? WillTiming.Never : WillTiming.Now, WillDelaySeconds: 0, ExpireAfterSeconds: null);
        }

        var will = s.Will switch
        {
            null => WillTiming.Never,
            { DelayInterval: 0 } => WillTiming.Now,
            _ => WillTiming.AfterDelay,
        };
        return new ConnectionLostPlan(
            EndSession: false,
            DetachedAtMs: nowMs,
            StoreDeadline: !s.Live && s.Persistent,
            DeadlineMs: DeadlineMs(s.ExpirySeconds, nowMs, nowMs),
            Will: will,
            WillDelaySeconds: will == WillTiming.AfterDelay ? Math.Min(s.Will!.DelayInterval, s.ExpirySeconds) : 0,
            ExpireAfterSeconds: s.ExpirySeconds == NeverExpires ? null : s.ExpirySeconds);
    }

    /// <summary>
    /// The moment a session expires (Unix ms): its expiry after its client left, or after now while the client is
    /// connected or its departure unknown; long.MaxValue when it never expires.
    /// </summary>
    public static long DeadlineMs(uint expirySeconds, long detachedAtMs, long nowMs) => expirySeconds == NeverExpires
        ? long.MaxValue
        : (detachedAtMs > 0 ? detachedAtMs : nowMs) + (expirySeconds * 1000L);

    /// <summary>
    /// A session recovered from storage with nobody connected: how long it has left, counted from when its client left
    /// (which may have been before its node stopped) or from now when it was connected as its node died. Null: it
    /// expired while no node held it and is removed.
    /// </summary>
    public static TimeSpan? RemainingAfterRecovery(uint expirySeconds, long detachedAtMs, long nowMs)
    {
        var leftAt = detachedAtMs > 0 ? detachedAtMs : nowMs;
        var remainingMs = (expirySeconds * 1000L) - (nowMs - leftAt);
        return expirySeconds != NeverExpires && remainingMs <= 0 ? null : TimeSpan.FromMilliseconds(remainingMs);
    }

    /// <summary>
    /// The will as a message to route (MQTT-v5.0 3.1.3.2.4: its Message Expiry Interval counts from when it is
    /// published). Whoever publishes it removes it from the session first, so that it goes out once.
    /// </summary>
    public static MqttApplicationMessage WillMessage(MqttWill will, string clientId, long nowMs)
    {
        var expiresAt = will.Properties.MessageExpiryInterval is { } seconds ? nowMs + (seconds * 1000L) : 0;
        return new MqttApplicationMessage(will.Topic, will.Payload, will.QoS, will.Retain, will.Properties, clientId, expiresAt);
    }

    /// <summary>
    /// An offline session idle for Sessions:PassivateAfterSeconds: may it leave memory? Only a persistent session with
    /// no work in hand and no delayed will, whose expiry is not due within <paramref name="dueSoonMs"/> (the expiry
    /// sweeper's reach: such a session ends by its own timer), and only once its deadline is stored, so that the
    /// sweeper wakes it in time.
    /// </summary>
    public static PassivationDecision MayPassivate(in PassivationFacts p, long nowMs, long dueSoonMs)
    {
        if (p.Held)
        {
            return PassivationDecision.StayHeld;
        }

        if (p.Ending)
        {
            return PassivationDecision.Ending;
        }

        if (p.Unused)
        {
            return PassivationDecision.LeaveUnused;
        }

        var busy = !p.Persistent || p.WorkInHand || p.WillPending;
        var dueSoon = p.DeadlineMs != long.MaxValue && p.DeadlineMs - nowMs < dueSoonMs;
        if (busy || dueSoon)
        {
            return PassivationDecision.NotYet;
        }

        return p.DeadlineStoredMs == p.DeadlineMs ? PassivationDecision.Passivate : PassivationDecision.StoreDeadlineThenPassivate;
    }
}
