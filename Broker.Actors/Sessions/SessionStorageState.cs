namespace Broker.Sessions;

/// <summary>
/// What a <see cref="SessionEntity"/> keeps only while it stores, recovers, holds payload references, wakes or
/// reroutes: the counts towards its next snapshot, its payload references and their fetches, its index writes, the
/// askers waiting for it to wake. An idle clean session and a client id's guard never need any of it, so the entity
/// creates this with the first of them to change (about 160 bytes less in each of a clean client's two session
/// objects; docs/benchmarks.md, memory per idle connection). Plain fields: the entity forwards to them.
/// </summary>
internal sealed class SessionStorageState
{
    // Journal: events, rows and bytes since the last snapshot (SessionEntity.Journal.cs).
    public int EventsSinceSnapshot;
    public int RowsSinceSnapshot;
    public long BytesSinceSnapshot;

    // Resume: attached in memory; SessionOpened not yet stored (SessionEntity.Resume.cs).
    public bool AttachRecordPending;

    // Index writes whose completion something waits for; the expiry deadline this incarnation stored (Passivation).
    public Dictionary<long, Action>? IndexWaits;
    public long DeadlineStoredMs;

    // Payload references and their fetches (SessionEntity.Payloads.cs).
    public Dictionary<(string Topic, long Id), int>? PayloadRefs;
    public List<(string Topic, long Id)>? Released;
    public Dictionary<(string Topic, long Id), (Routing.MqttApplicationMessage Message, List<SessionEntity.PendingConfirm> Confirms)>? AwaitingHeld;
    public HashSet<(string Topic, long Id)>? Fetched;
    public Dictionary<string, List<long>>? Fetching;
    public List<(string Topic, long Id)>? ReplayReleased;
    public bool StopWhenHeld;

    // A woken session re-announcing its routes, and who waits for it (SessionEntity.cs).
    public HashSet<long>? WakeRegistrations;
    public List<Akka.Actor.IActorRef>? Wakers;

    // Inbound rerouting after a node left (RouteRetry), and the drop-oldest log's throttle (SessionEntity.Flow.cs).
    public long ReroutedForLeftAtMs;

    // Retained messages asked for and not yet answered, and the departure they were last asked again for (SessionEntity.Subscriptions.cs).
    public Dictionary<(string Topic, string Filter), long>? RetainedAsked;
    public long RetainedAskedForLeftAtMs;
    public LogThrottle DropLog;
}
