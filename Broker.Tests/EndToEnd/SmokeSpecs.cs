using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

public sealed class SmokeSpecs
{
    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Publish_reaches_a_wildcard_subscriber_at_each_QoS(MqttProtocolVersion version)
    {
        await using var broker = await BrokerHarness.StartAsync();
        var subscriber = await broker.ConnectAsync(version, "sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("sensors/+/temp", MqttQualityOfServiceLevel.ExactlyOnce).Build());

        var publisher = await broker.ConnectAsync(version, "pub");
        foreach (var qos in new[] { MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce })
        {
            var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic("sensors/1/temp").WithPayload($"qos{(int)qos}").WithQualityOfServiceLevel(qos).Build());
            Assert.True(result.IsSuccess);
        }

        var messages = await received.WaitForAsync(3);
        Assert.Equal(["qos0", "qos1", "qos2"], messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToArray());
        Assert.Equal(
            [MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce],
            messages.Select(m => m.QualityOfServiceLevel).ToArray());
    }
}
