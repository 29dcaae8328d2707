using System.Security.Cryptography;
using Broker.Tests.Interop;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// Payloads of the size firmware chunks and camera images have (1 MiB and 16 MiB) pass with the default
/// Mqtt:MaxPacketSize (the protocol's limit), in both protocol versions, byte for byte, with MQTTnet on both sides and
/// with mosquitto_pub as the publisher.
/// </summary>
public sealed class LargePayloadSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private const int OneMiB = 1 << 20;
    private const int SixteenMiB = 16 << 20;
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311, OneMiB)]
    [InlineData(MqttProtocolVersion.V500, OneMiB)]
    [InlineData(MqttProtocolVersion.V311, SixteenMiB)]
    [InlineData(MqttProtocolVersion.V500, SixteenMiB)]
    public async Task A_large_QoS1_payload_reaches_the_subscriber_intact_with_default_settings(MqttProtocolVersion version, int size)
    {
        var topic = E2E.Id($"large-{size}", version);
        var (subscriber, received) = await SubscribeAsync(version, topic);
        var publisher = await _broker.ConnectAsync(version, topic + "-pub");
        var payload = RandomNumberGenerator.GetBytes(size);

        var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.True(result.IsSuccess, $"PUBACK {result.ReasonCode}");

        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await received.Task.WaitAsync(TimeSpan.FromSeconds(30))));
        await subscriber.DisconnectAsync();
        await publisher.DisconnectAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, "mqttv311")]
    [InlineData(MqttProtocolVersion.V500, "mqttv5")]
    public async Task A_16_MiB_payload_from_mosquitto_pub_reaches_an_MQTTnet_subscriber_intact(MqttProtocolVersion version, string mosquittoVersion)
    {
        var topic = E2E.Id("large-mosquitto", version);
        var (subscriber, received) = await SubscribeAsync(version, topic);
        var file = Path.Combine(Path.GetTempPath(), topic + ".bin");
        var payload = RandomNumberGenerator.GetBytes(SixteenMiB);
        await File.WriteAllBytesAsync(file, payload);
        try
        {
            await ExternalProcess.RunAsync(MosquittoPub,
                ["-h", "127.0.0.1", "-p", _broker.Port.ToString(), "-V", mosquittoVersion, "-q", "1", "-t", topic, "-f", file],
                TimeSpan.FromSeconds(60));
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await received.Task.WaitAsync(TimeSpan.FromSeconds(30))));
        }
        finally
        {
            File.Delete(file);
        }

        await subscriber.DisconnectAsync();
    }

    [Fact]
    public async Task CONNACK_leaves_Maximum_Packet_Size_out_at_the_protocol_limit_and_announces_a_lower_one()
    {
        var (client, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, MqttProtocolVersion.V500, E2E.Id("mps", MqttProtocolVersion.V500));
        await client.DisposeAsync();
        Assert.Null(connAck.MaximumPacketSize);

        await using var limited = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { MaxPacketSize = OneMiB } });
        var (other, limitedAck) = await RawMqttClient.ConnectAsync(limited.Port, MqttProtocolVersion.V500, "mps-limited");
        await other.DisposeAsync();
        Assert.Equal((uint)OneMiB, limitedAck.MaximumPacketSize);
    }

    /// <summary>A QoS 1 subscriber whose first message's payload is copied out inside the handler (MQTTnet may reuse its buffer).</summary>
    private async Task<(IMqttClient Client, TaskCompletionSource<byte[]> Received)> SubscribeAsync(MqttProtocolVersion version, string topic)
    {
        var client = _broker.NewClient();
        var received = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload));
            return Task.CompletedTask;
        };
        await client.ConnectAsync(_broker.Options(version, topic + "-sub").WithCleanStart(true).Build());
        await client.SubscribeAsync(topic);
        return (client, received);
    }
}
