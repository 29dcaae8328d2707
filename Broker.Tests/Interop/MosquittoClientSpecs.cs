using System.Text;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Interop;

/// <summary>
/// The Mosquitto command-line clients (Debian mosquitto-clients) against the broker, as MQTT 3.1.1 and 5.0: what
/// mosquitto_pub publishes reaches mosquitto_sub at every QoS, through a wildcard, retained, and across to and from
/// MQTTnet. mosquitto_sub runs with -d so that the spec can wait for its SUBACK instead of sleeping, and prints each
/// message as "MSG|topic|qos|retain|payload" (line-buffered through stdbuf).
/// </summary>
public sealed class MosquittoClientSpecs : IClassFixture<InteropBrokerFixture>
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(20);
    private readonly BrokerHarness _broker;

    public MosquittoClientSpecs(InteropBrokerFixture fixture)
    {
        _broker = fixture.Broker;
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Mosquitto_sub_should_receive_mosquitto_pub_at_each_QoS(string version)
    {
        var topic = $"interop/{version}/qos";
        using var sub = await StartSubscriberAsync(version, topic, qos: 2, count: 3);

        for (var qos = 0; qos <= 2; qos++)
        {
            await PublishAsync(version, topic, $"qos{qos}", qos);
        }

        var messages = await ReceivedAsync(sub);
        Assert.Equal(
            [$"{topic}|0|0|qos0", $"{topic}|1|0|qos1", $"{topic}|2|0|qos2"],
            messages.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Mosquitto_sub_should_receive_only_matching_topics_through_a_wildcard(string version)
    {
        var root = $"interop/{version}/wild";
        using var sub = await StartSubscriberAsync(version, root + "/+/temp", qos: 1, count: 2);

        await PublishAsync(version, root + "/1/temp", "21.5", 1);
        await PublishAsync(version, root + "/1/humidity", "40", 1);
        await PublishAsync(version, root + "/1/temp/x", "deeper", 1);
        await PublishAsync(version, root + "/2/temp", "19.0", 1);

        var messages = await ReceivedAsync(sub);
        Assert.Equal([$"{root}/1/temp|1|0|21.5", $"{root}/2/temp|1|0|19.0"], messages.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Retained_message_from_mosquitto_pub_should_reach_a_later_mosquitto_sub(string version)
    {
        var topic = $"interop/{version}/retained";
        await PublishAsync(version, topic, "kept", 1, "-r");

        using var sub = await StartSubscriberAsync(version, topic, qos: 1, count: 1);

        var messages = await ReceivedAsync(sub);
        Assert.Equal([$"{topic}|1|1|kept"], messages);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Mosquitto_sub_should_receive_what_MQTTnet_publishes(string version)
    {
        var topic = $"interop/{version}/from-mqttnet";
        using var sub = await StartSubscriberAsync(version, topic, qos: 2, count: 2);
        var publisher = await _broker.ConnectAsync(MqttProtocolVersion.V500, $"mqttnet-pub-{version}");

        foreach (var qos in new[] { MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce })
        {
            var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic(topic).WithPayload($"mqttnet-{(int)qos}").WithQualityOfServiceLevel(qos).Build());
            Assert.True(result.IsSuccess, result.ReasonString);
        }

        var messages = await ReceivedAsync(sub);
        Assert.Equal([$"{topic}|1|0|mqttnet-1", $"{topic}|2|0|mqttnet-2"], messages.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("mqttv311", MqttProtocolVersion.V311)]
    [InlineData("mqttv5", MqttProtocolVersion.V500)]
    public async Task MQTTnet_subscriber_should_receive_what_mosquitto_pub_publishes(string version, MqttProtocolVersion mqttnetVersion)
    {
        var topic = $"interop/{version}/to-mqttnet";
        var subscriber = await _broker.ConnectAsync(mqttnetVersion, $"mqttnet-sub-{version}");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(topic, MqttQualityOfServiceLevel.ExactlyOnce).Build());

        await PublishAsync(version, topic, "from-mosquitto-1", 1);
        await PublishAsync(version, topic, "from-mosquitto-2", 2);

        var messages = await received.WaitForAsync(2);
        Assert.Equal(
            ["from-mosquitto-1", "from-mosquitto-2"],
            messages.Select(m => Encoding.UTF8.GetString(m.Payload)).Order(StringComparer.Ordinal));
        Assert.Equal(
            [MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce],
            messages.Select(m => m.QualityOfServiceLevel).Order());
    }

    private async Task<ExternalProcess> StartSubscriberAsync(string version, string filter, int qos, int count)
    {
        // stdout is a pipe here, which stdio buffers fully: stdbuf -oL makes each line (the SUBACK one first) visible
        // as soon as it is printed.
        var sub = ExternalProcess.Start(StdBuf,
        [
            "-oL", MosquittoSub, "-h", "127.0.0.1", "-p", _broker.Port.ToString(), "-V", version, "-i", $"msub-{Guid.NewGuid():N}"[..20],
            "-t", filter, "-q", qos.ToString(), "-C", count.ToString(), "-W", "15", "-d", "-F", "MSG|%t|%q|%r|%p",
        ]);
        try
        {
            await sub.WaitForLineAsync(l => l.Contains("received SUBACK", StringComparison.Ordinal), ProcessTimeout);
            return sub;
        }
        catch
        {
            sub.Dispose();
            throw;
        }
    }

    private async Task PublishAsync(string version, string topic, string payload, int qos, params string[] extra)
    {
        await ExternalProcess.RunAsync(MosquittoPub,
        [
            "-h", "127.0.0.1", "-p", _broker.Port.ToString(), "-V", version, "-i", $"mpub-{Guid.NewGuid():N}"[..20],
            "-t", topic, "-m", payload, "-q", qos.ToString(), .. extra,
        ], ProcessTimeout);
    }

    private static async Task<string[]> ReceivedAsync(ExternalProcess sub)
    {
        await sub.WaitForSuccessAsync(ProcessTimeout);
        return sub.StdoutLines.Where(l => l.StartsWith("MSG|", StringComparison.Ordinal)).Select(l => l[4..]).ToArray();
    }
}
