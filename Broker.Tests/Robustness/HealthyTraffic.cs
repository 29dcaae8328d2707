using System.Text;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Robustness;

/// <summary>
/// A well-behaved MQTTnet client that keeps publishing QoS 1 messages to itself while a spec abuses the broker, so
/// that the spec can assert that every one of them was acknowledged and came back. Bounded: at most
/// <see cref="MaxMessages"/> messages, one every <see cref="Interval"/>.
/// </summary>
internal sealed class HealthyTraffic : IAsyncDisposable
{
    private const int MaxMessages = 2_000;
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    private readonly IMqttClient _client;
    private readonly MessageCollector _received;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _topic;
    private Task<int>? _loop;

    private HealthyTraffic(IMqttClient client, MessageCollector received, string topic)
    {
        _client = client;
        _received = received;
        _topic = topic;
    }

    public static async Task<HealthyTraffic> StartAsync(BrokerHarness broker, string clientId = "healthy")
    {
        var client = await broker.ConnectAsync(MqttProtocolVersion.V500, clientId);
        var received = new MessageCollector(client);
        var topic = $"healthy/{clientId}";
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(topic + "/#", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var traffic = new HealthyTraffic(client, received, topic);
        traffic._loop = Task.Run(traffic.RunAsync);
        return traffic;
    }

    /// <summary>Stops publishing and asserts that every message was acknowledged and received, in order.</summary>
    public async Task StopAndVerifyAsync(int atLeast = 3)
    {
        await _stop.CancelAsync();
        var sent = await _loop!.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(sent >= atLeast, $"the healthy client published only {sent} messages");
        var messages = await _received.WaitForAsync(sent, TimeSpan.FromSeconds(15));
        Assert.Equal(
            Enumerable.Range(0, sent).Select(i => i.ToString()),
            messages.Select(m => Encoding.UTF8.GetString(m.Payload)));
        Assert.True(_client.IsConnected, "the healthy client lost its connection");
    }

    public int ReceivedCount => _received.Messages.Count;

    /// <summary>Waits until the healthy client received a few more messages: it works right now.</summary>
    public async Task AssertFlowingAsync(int more = 3)
    {
        await _received.WaitForAsync(ReceivedCount + more, TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            try
            {
                await _loop.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (Exception)
            {
                // Reported by StopAndVerifyAsync when the spec gets that far.
            }
        }

        _stop.Dispose();
    }

    private async Task<int> RunAsync()
    {
        var sent = 0;
        while (!_stop.IsCancellationRequested && sent < MaxMessages)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var result = await _client.PublishAsync(
                new MqttApplicationMessageBuilder()
                    .WithTopic($"{_topic}/{sent}")
                    .WithPayload(sent.ToString())
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                    .Build(),
                timeout.Token);
            if (!result.IsSuccess)
            {
                throw new InvalidOperationException($"healthy publish {sent} failed: {result.ReasonCode} {result.ReasonString}");
            }

            sent++;
            try
            {
                await Task.Delay(Interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return sent;
    }
}
