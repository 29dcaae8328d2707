using Broker.Protocol.Packets;

namespace Broker.Sessions;

/// <summary>
/// What the lifecycle rules of <see cref="SessionLifecycle"/> read of a session: its stored settings, whether anything of
/// it exists, and where it lives. A snapshot taken by the session entity just before a decision.
/// </summary>
/// <param name="ExpirySeconds">The Session Expiry Interval in force (uint.MaxValue: never expires).</param>
/// <param name="DetachedAtMs">When the client left (Unix ms; 0 while connected or unknown).</param>
/// <param name="Will">The will the session holds (MQTT-v5.0 4.1: part of the Session State).</param>
/// <param name="HasState">A session exists (opened and not discarded since).</param>
/// <param name="Subscriptions">How many subscriptions it holds.</param>
/// <param name="Persistent">It journals its events (session expiry above 0).</param>
/// <param name="Journaled">Something of it is in the journal (recovered or written).</param>
/// <param name="Live">It is a live clean session beside its connection rather than the sharded entity.</param>
/// <param name="AttachRecordPending">It is attached in memory and its attach record is not stored yet.</param>
/// <param name="Queued">Messages queued for the client.</param>
/// <param name="Inflight">Messages sent and not completely acknowledged.</param>
public readonly record struct SessionFacts(
    uint ExpirySeconds,
    long DetachedAtMs,
    MqttWill? Will,
    bool HasState,
    int Subscriptions,
    bool Persistent,
    bool Journaled,
    bool Live,
    bool AttachRecordPending,
    int Queued,
    int Inflight);

/// <summary>
/// What may hold a session back from moving to another node (SessionEntity.Follow.cs): each count is work under way
/// whose answer would reach the actor that asked for it, not the session's new home, or state a snapshot does not
/// hold yet.
/// </summary>
public readonly record struct MoveFacts(
    int PendingWrites,
    bool Ending,
    bool FetchingPayloads,
    int AwaitingPayloadHolds,
    int PendingSubscribes,
    int InboundRouting,
    int InboundPending,
    int WakeRegistrations,
    bool AttachRecordPending,
    int HeldPublishers);

/// <summary>The index rows a Clean Start removes with the session it discards.</summary>
public enum DiscardedIndex : byte
{
    /// <summary>No rows: nothing was journaled, or the session is a live one (which keeps none).</summary>
    None,

    /// <summary>The old session's routes; the new persistent session writes its own deadline.</summary>
    RemoveRoutes,

    /// <summary>Every row of the client id: the new session is clean.</summary>
    RemoveSession,
}

/// <summary>
/// What an attach does, in the order the entity carries it out: close the connection taken over (and send its will),
/// discard the old session, store the attach record (or defer it), journal what a clean session becomes persistent
/// with, store the expiry deadline, then answer with <see cref="Present"/> once every write is stored.
/// </summary>
/// <param name="TakeOverOld">[MQTT-3.1.4-3] another connection is attached: it is closed (v5 0x8E).</param>
/// <param name="PublishWillNow">The taken-over connection's will goes out now: the session does not continue within its delay.</param>
/// <param name="Present">Session Present in CONNACK [MQTT-3.2.2-2/3].</param>
/// <param name="DiscardState">[MQTT-3.1.2-4] Clean Start with something to discard.</param>
/// <param name="DeleteJournal">The discarded session's journal is deleted.</param>
/// <param name="DiscardIndex">The index rows removed with the discarded session.</param>
/// <param name="PersistentAfterDiscard">Whether the <see cref="SessionCleared"/> marker itself is journaled.</param>
/// <param name="Persistent">The session journals from now on (session expiry above 0).</param>
/// <param name="BecomesPersistent">A session that did not journal starts to.</param>
/// <param name="JournalSubscriptions">A resumed clean session becomes persistent: what it has is journaled.</param>
/// <param name="DeferRecord">A plain resume: the attach record is stored later (SessionEntity.Resume.cs).</param>
/// <param name="StoreDeadline">The expiry deadline is stored in the session index.</param>
/// <param name="InflightCapacity">The in-flight window: the client's Receive Maximum, within the server's.</param>
/// <param name="WorthLogging">A persistent or resumed session: its opening is logged.</param>
public sealed record AttachPlan(
    bool TakeOverOld,
    bool PublishWillNow,
    bool Present,
    bool DiscardState,
    bool DeleteJournal,
    DiscardedIndex DiscardIndex,
    bool PersistentAfterDiscard,
    bool Persistent,
    bool BecomesPersistent,
    bool JournalSubscriptions,
    bool DeferRecord,
    bool StoreDeadline,
    int InflightCapacity,
    bool WorthLogging);

/// <summary>When the will of a session whose client left goes out.</summary>
public enum WillTiming : byte
{
    /// <summary>No will (none given, or a normal DISCONNECT removed it).</summary>
    Never,

    /// <summary>At once (no Will Delay Interval, or the session ends now).</summary>
    Now,

    /// <summary>After <see cref="ConnectionLostPlan.WillDelaySeconds"/>, unless the client comes back first.</summary>
    AfterDelay,
}

/// <summary>
/// What the loss of the connection does. <see cref="EndSession"/>: a session with expiry 0 ends at once (and a will
/// it holds goes out as it ends). Otherwise the departure is stored at <see cref="DetachedAtMs"/>, the deadline
/// (<see cref="DeadlineMs"/>) is indexed when <see cref="StoreDeadline"/>, the will is timed, and the expiry timer
/// runs for <see cref="ExpireAfterSeconds"/> (null: never).
/// </summary>
public readonly record struct ConnectionLostPlan(
    bool EndSession,
    long DetachedAtMs,
    bool StoreDeadline,
    long DeadlineMs,
    WillTiming Will,
    uint WillDelaySeconds,
    uint? ExpireAfterSeconds);

/// <summary>
/// What a DISCONNECT does before the connection counts as lost: the new expiry to store (MQTT-v5.0 3.14.2.2.2; null
/// when unchanged), whether the will is removed [MQTT-3.14.4-3], and then <see cref="Lost"/>.
/// </summary>
public readonly record struct DetachPlan(uint? StoreExpiry, bool DropWill, ConnectionLostPlan Lost);

/// <summary>What an idle offline session may do (SessionEntity.Passivation.cs).</summary>
public enum PassivationDecision : byte
{
    /// <summary>Something holds it (a connection, a live session it guards, or it is one): stop counting idle time.</summary>
    StayHeld,

    /// <summary>It is ending already: nothing to do.</summary>
    Ending,

    /// <summary>Nothing of it exists: it leaves memory at once.</summary>
    LeaveUnused,

    /// <summary>Work in hand, or its expiry is due soon: asked again after the next idle period.</summary>
    NotYet,

    /// <summary>Its deadline is stored: it passivates now.</summary>
    Passivate,

    /// <summary>Its deadline is stored first, then it passivates (if still offline).</summary>
    StoreDeadlineThenPassivate,
}

/// <summary>
/// What <see cref="SessionLifecycle.MayPassivate"/> reads of an idle session.
/// </summary>
/// <param name="Held">Connected, a live session, or guarding a live session.</param>
/// <param name="Ending">On its way out.</param>
/// <param name="Unused">No session, no connection, no subscription, nothing guarded.</param>
/// <param name="Persistent">It journals (only a journaled session can come back from storage).</param>
/// <param name="WorkInHand">Pending writes, holds, inbound QoS 2 messages being routed or index writes awaited.</param>
/// <param name="WillPending">A delayed will waits for its time.</param>
/// <param name="DeadlineMs">When it expires (long.MaxValue: never).</param>
/// <param name="DeadlineStoredMs">The deadline this incarnation stored (0: none).</param>
public readonly record struct PassivationFacts(
    bool Held,
    bool Ending,
    bool Unused,
    bool Persistent,
    bool WorkInHand,
    bool WillPending,
    long DeadlineMs,
    long DeadlineStoredMs);
