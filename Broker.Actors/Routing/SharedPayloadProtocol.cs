using Broker.Cluster;
using Broker.Persistence.Serialization;

namespace Broker.Routing;

// A payload stored once for many persistent sessions (README "Storage"):
//
//   topic ──Deliver(PayloadId)──► session ──MessageQueued(ref)──► its journal
//                                   │ HoldPayload
//   topic ◄─────────────────────────┘   (first holder: SharedPayloadStored, then batched SharedPayloadHoldersChanged)
//   topic ──PayloadHeld──► session: the delivery is confirmed to the publisher once both writes are stored
//   ...
//   session: entry acknowledged/removed and stored ──ReleasePayloads──► topic: holder gone; no holder: payload gone
//   session recovery ──FetchPayloads──► topic ──PayloadsFetched──► session (payloads back in memory)
//   topic recovery ──CheckHolds──► each holder ──HoldsChecked(NotHeld)──► topic (releases what nobody holds)

/// <summary>A session journaled a reference to payload <see cref="Id"/> and asks the topic to keep it for it.
/// <see cref="Message"/> travels only when the topic answered that it no longer had the message at hand.</summary>
public sealed record HoldPayload(string Topic, string ClientId, long Id, MqttApplicationMessage? Message)
    : IWithTopic, IBrokerSerializable;

/// <summary>The topic's answer to <see cref="HoldPayload"/>: stored with this holder, or (Stored false) the topic
/// needs the message sent along.</summary>
public sealed record PayloadHeld(string Topic, long Id, bool Stored) : IBrokerSerializable;

/// <summary>The session no longer references these payloads (its removal of them is stored); idempotent.</summary>
public sealed record ReleasePayloads(string Topic, string ClientId, IReadOnlyList<long> Ids) : IWithTopic, IBrokerSerializable;

/// <summary>A recovering session asks for the payloads it references; answered by one or more <see cref="PayloadsFetched"/>.</summary>
public sealed record FetchPayloads(string Topic, string ClientId, IReadOnlyList<long> Ids) : IWithTopic, IBrokerSerializable;

/// <summary>Payloads the topic holds among those asked (ids it does not hold are absent); <see cref="Last"/> ends the answer.</summary>
public sealed record PayloadsFetched(string Topic, IReadOnlyList<FetchedPayload> Payloads, bool Last) : IBrokerSerializable;

public readonly record struct FetchedPayload(long Id, ReadOnlyMemory<byte> Payload);

/// <summary>A recovered topic asks a holder which of these payloads it still references.</summary>
public sealed record CheckHolds(string ClientId, string Topic, IReadOnlyList<long> Ids) : IWithClientId, IBrokerSerializable;

/// <summary>The session's answer to <see cref="CheckHolds"/>: the ids it does not reference (the topic releases them).</summary>
public sealed record HoldsChecked(string Topic, string ClientId, IReadOnlyList<long> NotHeld) : IBrokerSerializable;

/// <summary>Topic journal: a payload stored once, with its first holders.</summary>
public sealed record SharedPayloadStored(long Id, MqttApplicationMessage Message, IReadOnlyList<string> Holders) : ITopicEvent;

/// <summary>Topic journal: holders added to or removed from stored payloads (a payload without holder is gone).</summary>
public sealed record SharedPayloadHoldersChanged(IReadOnlyList<HolderChange> Changes) : ITopicEvent;

public readonly record struct HolderChange(long Id, string ClientId, bool Added);
