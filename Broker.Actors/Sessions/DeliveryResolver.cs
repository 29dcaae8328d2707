using System.Collections.Immutable;
using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// Turns a <see cref="Deliver"/> into what this session sends, from the session's own subscriptions (the authority,
/// so a message routed by a stale registration after UNSUBSCRIBE is dropped [MQTT-3.10.4-2]):
/// <list type="bullet">
/// <item>all matching non-shared subscriptions merge into one message with the highest granted QoS and every
/// subscription identifier (MQTT-v5.0 3.3.4);</item>
/// <item>No Local subscriptions ignore the client's own messages [MQTT-3.8.3-3];</item>
/// <item>the QoS is the lower of published and granted QoS [MQTT-3.8.4-8];</item>
/// <item>the retain flag is kept only for Retain As Published subscriptions, and always for retained messages sent
/// because of a new subscription [MQTT-3.3.1-8/9].</item>
/// </list>
/// </summary>
public static class DeliveryResolver
{
    public static QueuedMessage? Resolve(
        Dictionary<string, SubscriptionOptions> subscriptions, // not an interface: its enumerator stays a struct (every delivery)
        string clientId,
        Deliver deliver)
    {
        var message = deliver.Message;
        if (deliver.SharedFilter is not null || deliver.RetainedForFilter is not null)
        {
            var filter = deliver.SharedFilter ?? deliver.RetainedForFilter!;
            if (!subscriptions.TryGetValue(filter, out var options))
            {
                return null;
            }

            var ids = options.SubscriptionIdentifier == 0 ? ImmutableArray<uint>.Empty : [options.SubscriptionIdentifier];
            var retain = deliver.RetainedForFilter is not null || (message.Retain && options.RetainAsPublished);
            if (deliver.SharedFilter is not null && options.NoLocal && message.PublisherClientId == clientId)
            {
                return null;
            }

            return new QueuedMessage(message, Min(message.QoS, options.QoS), retain, ids, deliver.SharedFilter);
        }

        var matched = false;
        var qos = MqttQoS.AtMostOnce;
        var retainAsPublished = false;
        ImmutableArray<uint>.Builder? idBuilder = null;
        foreach (var (filter, options) in subscriptions)
        {
            if (filter.StartsWith(MqttTopic.SharedPrefix, StringComparison.Ordinal) || !MqttTopic.Matches(filter, message.Topic))
            {
                continue;
            }

            if (options.NoLocal && message.PublisherClientId == clientId)
            {
                continue;
            }

            matched = true;
            qos = options.QoS > qos ? options.QoS : qos;
            retainAsPublished |= options.RetainAsPublished;
            if (options.SubscriptionIdentifier != 0)
            {
                (idBuilder ??= ImmutableArray.CreateBuilder<uint>()).Add(options.SubscriptionIdentifier);
            }
        }

        if (!matched)
        {
            return null;
        }

        return new QueuedMessage(
            message,
            Min(message.QoS, qos),
            message.Retain && retainAsPublished,
            idBuilder?.ToImmutable() ?? ImmutableArray<uint>.Empty);
    }

    private static MqttQoS Min(MqttQoS a, MqttQoS b) => a < b ? a : b;
}
