using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;

namespace Broker.Channel;

/// <summary>The topic of an incoming PUBLISH once its alias is applied, or the rule it broke (see <see cref="InboundChannel.ResolveTopic"/>).</summary>
public readonly record struct InboundTopic(string? Topic, MqttReasonCode Violation, string? Why)
{
    /// <summary>The client broke a rule: the connection is closed with <see cref="Violation"/> (a DISCONNECT in v5).</summary>
    public bool IsViolation => Topic is null;

    public static InboundTopic Valid(string topic) => new(topic, MqttReasonCode.Success, null);

    public static InboundTopic Broken(MqttReasonCode violation, string why) => new(null, violation, why);
}

/// <summary>What the connection does with an admitted PUBLISH (see <see cref="InboundChannel.Accept"/>).</summary>
public enum InboundPublishAction : byte
{
    /// <summary>QoS 0: route <see cref="InboundPublishDecision.Message"/> (no acknowledgement).</summary>
    RouteQos0,

    /// <summary>QoS 1: route the message with <see cref="InboundPublishDecision.AckId"/>; PUBACK once every session stored it.</summary>
    RouteQos1,

    /// <summary>QoS 1: the message waits behind earlier ones on its topic that may have been lost (routed later, in order).</summary>
    Qos1Held,

    /// <summary>QoS 1: a resend of a packet id still being stored; nothing is routed twice, PUBACK follows once it is stored.</summary>
    Qos1AlreadyInFlight,

    /// <summary>QoS 2: hand the message to the session (which answers PUBREC once it is stored).</summary>
    HandOverQos2,

    /// <summary>The client broke a rule: close with <see cref="InboundPublishDecision.Violation"/>.</summary>
    Violation,
}

/// <summary>
/// One decision about a PUBLISH: an enum and fields, no allocation of its own (the message is the one the publish
/// needs anyway).
/// </summary>
public readonly record struct InboundPublishDecision(
    InboundPublishAction Action,
    MqttApplicationMessage? Message = null,
    long AckId = 0,
    MqttReasonCode Violation = MqttReasonCode.Success,
    string? Why = null);

/// <summary>
/// The end of a QoS 1 publish's wait: acknowledge it (<see cref="Acknowledge"/>, with <see cref="Reason"/>), and route
/// what waited behind it on its topic (<see cref="RouteNow"/>, each with its new ack id, in the order they came).
/// <see cref="Refused"/>: a subscriber's full queue, or a session slow to confirm, did not take it (v5 hears 0x97;
/// a 3.1.1 client has no refusal code and is disconnected unacknowledged).
/// </summary>
public readonly record struct Qos1Completion(
    ushort PacketId,
    bool Refused,
    bool Acknowledge,
    MqttReasonCode Reason,
    List<(long AckId, MqttApplicationMessage Message)>? RouteNow);

/// <summary>What a re-attached session is handed again (see <see cref="InboundChannel.Unanswered"/>).</summary>
public enum UnansweredKind : byte
{
    /// <summary>A QoS 2 PUBLISH not yet answered with PUBREC: <see cref="Unanswered.Message"/>.</summary>
    Qos2Publish,

    /// <summary>A PUBREL not yet answered with PUBCOMP.</summary>
    Release,

    /// <summary>A SUBSCRIBE or UNSUBSCRIBE not yet answered: <see cref="Unanswered.Request"/>.</summary>
    Request,
}

/// <summary>One thing the client sent that the stopped session never answered.</summary>
public readonly record struct Unanswered(UnansweredKind Kind, ushort PacketId, MqttApplicationMessage? Message = null, MqttPacket? Request = null);
