using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>Small builders for the session unit specs.</summary>
internal static class SessionTestData
{
    public static MqttApplicationMessage Message(
        string topic,
        MqttQoS qos = MqttQoS.AtLeastOnce,
        bool retain = false,
        string publisher = "publisher",
        string payload = "p") =>
        new(topic, System.Text.Encoding.UTF8.GetBytes(payload), qos, retain, MqttMessageProperties.Empty, publisher, 0);

    public static QueuedMessage Queued(string payload, MqttQoS qos = MqttQoS.AtLeastOnce) =>
        new(Message("t", qos, payload: payload), qos, false, ImmutableArray<uint>.Empty);

    public static string PayloadOf(QueuedMessage m) => System.Text.Encoding.UTF8.GetString(m.Message.Payload.Span);

    public static SubscriptionOptions Sub(
        MqttQoS qos,
        uint id = 0,
        bool noLocal = false,
        bool retainAsPublished = false) =>
        new(qos, noLocal, retainAsPublished, MqttRetainHandling.SendAtSubscribe, id);
}
