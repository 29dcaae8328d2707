using System.Text;
using Broker.Configuration;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// One broker shared by the tests of a class (xunit class fixture): tests use client ids and topics made unique with
/// <see cref="E2E.Id"/>, so they never see each other's traffic. Derive to change the broker's options.
/// </summary>
public class BrokerFixture : IAsyncLifetime
{
    public BrokerHarness Broker { get; private set; } = null!;

    protected virtual BrokerOptions Configure(BrokerOptions options) => options;

    public async Task InitializeAsync() => Broker = await BrokerHarness.StartAsync(Configure);

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>Small helpers shared by the end-to-end specs.</summary>
public static class E2E
{
    /// <summary>Short window for "must not arrive" assertions.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private static int _counter;

    /// <summary>A name unique in this test run, readable in logs: prefix-version-n.</summary>
    public static string Id(string prefix, MqttProtocolVersion version) =>
        $"{prefix}-{(version == MqttProtocolVersion.V500 ? "v5" : "v311")}-{Interlocked.Increment(ref _counter)}";

    public static string Text(MqttApplicationMessage message) => Encoding.UTF8.GetString(message.Payload);

    public static string[] Texts(IEnumerable<MqttApplicationMessage> messages) => messages.Select(Text).ToArray();

    public static MqttApplicationMessage Message(
        string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtMostOnce, bool retain = false) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos)
            .WithRetainFlag(retain).Build();

    public static async Task<MqttClientSubscribeResult> SubscribeAsync(
        this IMqttClient client, string filter, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce)
    {
        var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(filter, qos).Build());
        Assert.Equal((int)qos, (int)result.Items.Single().ResultCode);
        return result;
    }

    public static async Task PublishAsync(
        this IMqttClient client, string topic, string payload,
        MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool retain = false)
    {
        var result = await client.PublishAsync(Message(topic, payload, qos, retain));
        Assert.True(result.IsSuccess, $"publish on {topic} failed: {result.ReasonCode}");
    }

    /// <summary>Connects with Clean Start 0 (v3.1.1 Clean Session 0; v5 with a session expiry) and returns the result.</summary>
    /// <remarks>The returned collector is attached before CONNECT, so queued messages sent right after CONNACK are seen.</remarks>
    public static async Task<(IMqttClient Client, MqttClientConnectResult Result, MessageCollector Received)> ConnectPersistentAsync(
        this BrokerHarness broker, MqttProtocolVersion version, string clientId, Action<MqttClientOptionsBuilder>? configure = null)
    {
        var client = broker.NewClient();
        var received = new MessageCollector(client);
        var builder = broker.Options(version, clientId).WithCleanStart(false);
        if (version == MqttProtocolVersion.V500)
        {
            builder.WithSessionExpiryInterval(300);
        }

        configure?.Invoke(builder);
        var result = await client.ConnectAsync(builder.Build());
        return (client, result, received);
    }

    /// <summary>Proves the broker still serves clients: a fresh subscriber receives a fresh publisher's message.</summary>
    public static async Task AssertHealthyAsync(this BrokerHarness broker, MqttProtocolVersion version)
    {
        var topic = Id("healthy", version);
        var subscriber = await broker.ConnectAsync(version, topic + "-sub");
        var received = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(topic);
        var publisher = await broker.ConnectAsync(version, topic + "-pub");
        await publisher.PublishAsync(topic, "still alive");
        var messages = await received.WaitForAsync(1);
        Assert.Equal("still alive", Text(messages[0]));
        await subscriber.DisconnectAsync();
        await publisher.DisconnectAsync();
    }
}
