namespace Broker.Sessions;

/// <summary>
/// The broker's side of v5 flow control for what a client sends (MQTT-v5.0 4.9): "The Client MUST NOT send more than
/// Receive Maximum QoS 1 and QoS 2 PUBLISH packets for which it has not received PUBACK, PUBCOMP, or PUBREC with a
/// Reason Code of 128 or greater from the Server" [MQTT-3.3.4-9]; a Server that receives more "uses DISCONNECT with
/// Reason Code 0x93 (Receive Maximum exceeded)" [MQTT-3.3.4-10].
/// <code>
///   QoS 1:  PUBLISH ──────────────► PUBACK                       (slot held by the connection's QoS 1 set)
///   QoS 2:  PUBLISH ──► PUBREC ──► PUBREL ──► PUBCOMP            (slot held here, from PUBLISH to PUBCOMP,
///                   └─► PUBREC >= 0x80                            or to a PUBREC that refuses)
/// </code>
/// This type owns the QoS 2 slots and the rule over both kinds; the connection counts its QoS 1 publishes awaiting
/// PUBACK as before and passes the count in. A resent PUBLISH with a packet id already held takes no second slot.
/// The quota starts afresh with every connection (MQTT-v5.0 4.9: "The initial send quota is Receive Maximum").
/// </summary>
public sealed class InboundQuota(int receiveMaximum)
{
    private HashSet<ushort>? _qos2; // PUBLISH received, PUBCOMP (or a refusing PUBREC) not yet sent

    public int ReceiveMaximum { get; } = receiveMaximum;

    /// <summary>QoS 2 publishes of this connection that the broker has not completed yet.</summary>
    public int Qos2InFlight => _qos2?.Count ?? 0;

    /// <summary>
    /// A QoS 2 PUBLISH arrived; <paramref name="qos1InFlight"/> QoS 1 publishes await PUBACK. False: the client exceeded
    /// the Receive Maximum, and the connection must be closed with 0x93.
    /// </summary>
    public bool AdmitQos2(ushort packetId, int qos1InFlight)
    {
        if (!(_qos2 ??= new()).Add(packetId))
        {
            return true; // a resend of one already counted
        }

        return qos1InFlight + _qos2.Count <= ReceiveMaximum;
    }

    /// <summary>A new QoS 1 PUBLISH made <paramref name="qos1InFlight"/> await PUBACK (itself included): too many?</summary>
    public bool Qos1Exceeds(int qos1InFlight) => qos1InFlight + Qos2InFlight > ReceiveMaximum;

    /// <summary>The broker sent PUBCOMP, or a PUBREC with a reason code of 0x80 or above: the slot is free again.</summary>
    public void Complete(ushort packetId) => _qos2?.Remove(packetId);
}
