using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>MQTT-v5.0 4.8.2: a shared-subscription message goes to one member; if that member leaves first, another gets it.</summary>
public sealed class SharedSubscriptionHandBackSpecs
{
    [Fact]
    public async Task Messages_a_member_did_not_acknowledge_go_to_another_member_when_it_unsubscribes()
    {
        await using var broker = await BrokerHarness.StartAsync();
        const string filter = "$share/workers/jobs/#";

        // Member A never acknowledges: its messages stay in flight.
        var a = await broker.ConnectAsync(MqttProtocolVersion.V500, "member-a");
        var aReceived = new List<string>();
        a.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            lock (aReceived)
            {
                aReceived.Add(Encoding.UTF8.GetString(e.ApplicationMessage.Payload));
            }

            return Task.CompletedTask;
        };
        await a.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build());

        var b = await broker.ConnectAsync(MqttProtocolVersion.V500, "member-b");
        var bReceived = new MessageCollector(b);
        await b.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build());

        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "publisher");
        for (var i = 0; i < 10; i++)
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("jobs/x").WithPayload($"job{i}")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        // Round-robin: each member got some.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && (aReceived.Count + bReceived.Messages.Count < 10))
        {
            await Task.Delay(20);
        }

        int fromA;
        lock (aReceived)
        {
            fromA = aReceived.Count;
        }

        Assert.True(fromA > 0, "member A should have been chosen for some messages");
        Assert.Equal(10, fromA + bReceived.Messages.Count);

        // A leaves the group without acknowledging: B receives A's messages too.
        await a.UnsubscribeAsync(filter);
        var all = await bReceived.WaitForAsync(10);
        var payloads = all.Select(m => Encoding.UTF8.GetString(m.Payload)).OrderBy(p => p, StringComparer.Ordinal).ToArray();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"job{i}").OrderBy(p => p, StringComparer.Ordinal).ToArray(), payloads);
    }
}
