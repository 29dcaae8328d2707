using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>
/// The outbound side of a session as a pure state machine (MQTT-4.3, 4.4, 4.6): the queue of messages waiting for the
/// client, the in-flight window, and the positions that give each message its packet id. The session entity applies
/// its journal events here (live and on recovery) and asks what to do next; it owns the side effects (journal, refs,
/// packets to the connection).
/// <para>
/// Positions: every queued message takes the next position (<see cref="NextSeq"/>), replayed the same way on
/// recovery, and its packet id is <see cref="QueuedMessage.PacketIdOf"/> of it, so a send is not journaled. A message
/// goes out only once it is stored (<see cref="StoredBelow"/>), and only while no message in flight holds its id.
/// Recovery does not know which messages were sent: they stay queued, a replayed PUBREC or completion finds its
/// message by id (the oldest queued one with that id: messages go in order, never two under one id), and messages
/// below <see cref="SentBelow"/> go again with DUP.
/// </para>
/// <code>
///   Queued ──► [ queue: seq n, n+1, ... ] ──(stored, id free, window room)──► [ in flight: id → message ]
///                     │ expired: Discarded(seq)                                 │ PUBACK / PUBCOMP: Completed(id)
///                                                                               │ PUBREC: Released(id), then PUBREL
/// </code>
/// </summary>
public sealed class OutboundFlow
{
    public OutboundFlow(MessageQueue queue, InflightWindow inflight)
    {
        Queue = queue;
        Inflight = inflight;
    }

    public MessageQueue Queue { get; }

    public InflightWindow Inflight { get; }

    /// <summary>The position the next queued message takes.</summary>
    public long NextSeq { get; set; }

    /// <summary>Messages at positions below are stored: only those may be sent.</summary>
    public long StoredBelow { get; set; }

    /// <summary>Messages at positions below may have been sent: sent again, they carry DUP.</summary>
    public long SentBelow { get; set; }

    /// <summary>What the session does about a client's acknowledgement of an outbound message.</summary>
    public enum AckAction
    {
        /// <summary>Not in flight: ignored (a PUBREC is answered with PUBREL "Packet Identifier not found").</summary>
        Unknown,

        /// <summary>Done (PUBACK, PUBCOMP, or PUBREC with a failure reason): journal the completion.</summary>
        Complete,

        /// <summary>First PUBREC of a QoS 2 message: journal the release, then send PUBREL.</summary>
        Release,

        /// <summary>PUBREC again for a released message: send PUBREL again.</summary>
        PubRelAgain,

        /// <summary>In flight, but not an acknowledgement its state expects (PUBACK for QoS 2, PUBCOMP before PUBREC): ignored.</summary>
        Ignore,
    }

    /// <summary>The next step of the pump: a message to send, an expired head to discard, or nothing.</summary>
    public readonly record struct Step(QueuedMessage? Send, ushort PacketId, bool Dup, QueuedMessage? Expired);

    /// <summary>Queued: the message takes the next position. Recovery drops nothing (see SessionEntity.Apply).</summary>
    public List<QueuedMessage>? Enqueue(QueuedMessage message, bool mayDrop, out QueuedMessage queued)
    {
        queued = message with { Seq = NextSeq++ };
        return Queue.Enqueue(queued, mayDrop);
    }

    /// <summary>Discarded unsent (expired): the message at <paramref name="seq"/> leaves the queue.</summary>
    public QueuedMessage? Discard(long seq) => Queue.RemoveFirst(m => m.Seq == seq);

    /// <summary>PUBREC journaled: the in-flight entry is released (on recovery, the queued message it was for moves into flight).</summary>
    public void Release(ushort packetId, bool recovering)
    {
        if (!Inflight.Release(packetId) && recovering && TakeSent(packetId) is { } message)
        {
            Inflight.Add(new InflightMessage(packetId, message, true));
        }
    }

    /// <summary>Completion journaled: returns the message that is done (null when none matches).</summary>
    public QueuedMessage? Complete(ushort packetId, bool recovering)
    {
        if (Inflight.TryGet(packetId, out var entry))
        {
            Inflight.Remove(packetId);
            return entry.Message;
        }

        return recovering ? TakeSent(packetId) : null;
    }

    /// <summary>Older journals: the head of the queue was sent under this id.</summary>
    public void SentLegacy(ushort packetId) => Inflight.Add(new InflightMessage(packetId, Queue.Dequeue(), false));

    /// <summary>Replay is over: everything recovered is stored; if the client was attached, any of it may have been sent.</summary>
    public void Recovered(bool wasAttached)
    {
        StoredBelow = NextSeq;
        if (wasAttached)
        {
            SentBelow = NextSeq;
        }
    }

    /// <summary>
    /// The next step while connected: the head of the queue goes into flight (it is stored, its id is free and the
    /// window has room), or is reported expired (not removed: the caller journals its discard), or nothing.
    /// </summary>
    public Step Next(long nowMs)
    {
        if (Inflight.IsFull || !Queue.TryPeek(out var head) || head.Seq >= StoredBelow)
        {
            return default;
        }

        if (head.Message.IsExpired(nowMs))
        {
            return new Step(null, 0, false, head);
        }

        var packetId = QueuedMessage.PacketIdOf(head.Seq);
        if (Inflight.Contains(packetId))
        {
            return default; // 65,535 positions back, or an id from an older journal, still in flight
        }

        Queue.Dequeue();
        Inflight.Add(new InflightMessage(packetId, head, false));
        var dup = head.Seq < SentBelow;
        SentBelow = Math.Max(SentBelow, head.Seq + 1);
        return new Step(head, packetId, dup, null);
    }

    /// <summary>What a PUBACK, PUBREC or PUBCOMP for <paramref name="packetId"/> means (MQTT-4.3.2, 4.3.3; v5 4.3.3 for failure reasons).</summary>
    public AckAction OnAck(MqttPacketType type, ushort packetId, MqttReasonCode reason)
    {
        if (!Inflight.TryGet(packetId, out var entry))
        {
            return AckAction.Unknown;
        }

        return type switch
        {
            MqttPacketType.PubAck when entry.Message.QoS == MqttQoS.AtLeastOnce => AckAction.Complete,
            MqttPacketType.PubComp when entry.Released => AckAction.Complete,
            MqttPacketType.PubRec when entry.Message.QoS == MqttQoS.ExactlyOnce && (byte)reason >= 0x80 => AckAction.Complete,
            MqttPacketType.PubRec when entry.Message.QoS == MqttQoS.ExactlyOnce =>
                entry.Released ? AckAction.PubRelAgain : AckAction.Release,
            _ => AckAction.Ignore,
        };
    }

    /// <summary>Clean Start: everything goes (positions continue).</summary>
    public void Clear()
    {
        Queue.Clear();
        Inflight.Clear();
    }

    /// <summary>
    /// Recovery: the message a replayed PUBREC or completion was for, sent under <paramref name="packetId"/> but still
    /// queued (sends are not journaled): the oldest queued with that id.
    /// </summary>
    private QueuedMessage? TakeSent(ushort packetId) => Queue.RemoveFirst(m => QueuedMessage.PacketIdOf(m.Seq) == packetId);
}
