using System.Diagnostics;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using BrokerQoS = Broker.Protocol.MqttQoS;

namespace Broker.Tests.FlowControl;

/// <summary>
/// A subscriber that stops reading (a raw TCP client that subscribed and then never reads or acknowledges) cannot
/// stall the world: publishers to other topics keep getting their PUBACKs without waiting on it, and a v5 publisher to
/// its topic is held for <c>Sessions:MaxPublisherHold</c> and then refused with 0x97, at once for every message after
/// that until the queue drains. Real broker, real TCP.
/// </summary>
public sealed class StuckSubscriberSpecs
{
    private const double HoldSeconds = 2;

    [Fact]
    public async Task A_stuck_subscriber_holds_only_its_own_publishers_then_refuses_them_with_0x97()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Sessions = o.Sessions with { MaxQueuedMessages = 10, MaxInflight = 4, MaxPublisherHold = HoldSeconds },
        });
        var (stuck, _) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, "stuck-sub", c => c with { KeepAlive = 0 });
        await using var _ = stuck;
        await stuck.SubscribeAsync(1, "stuck/t", BrokerQoS.AtLeastOnce);

        var healthySubscriber = await broker.ConnectAsync(MqttProtocolVersion.V500, "healthy-sub");
        var healthyReceived = new MessageCollector(healthySubscriber);
        await E2E.SubscribeAsync(healthySubscriber, "healthy/t");
        var healthyPublisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "healthy-pub");
        var stuckPublisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "stuck-pub");

        // The stuck subscriber takes 4 in flight and 10 queued; the 15th is held, then refused, and so is the rest.
        var healthyLatencies = new List<TimeSpan>();
        var healthy = Task.Run(async () =>
        {
            for (var i = 0; i < 60; i++)
            {
                var clock = Stopwatch.StartNew();
                var result = await healthyPublisher.PublishAsync(E2E.Message("healthy/t", "h" + i, MqttQualityOfServiceLevel.AtLeastOnce));
                healthyLatencies.Add(clock.Elapsed);
                Assert.Equal(MqttClientPublishReasonCode.Success, result.ReasonCode);
                await Task.Delay(50);
            }
        });

        var codes = new List<MqttClientPublishReasonCode>();
        var took = new List<TimeSpan>();
        for (var i = 0; i < 20; i++)
        {
            var clock = Stopwatch.StartNew();
            codes.Add((await stuckPublisher.PublishAsync(E2E.Message("stuck/t", "s" + i, MqttQualityOfServiceLevel.AtLeastOnce))).ReasonCode);
            took.Add(clock.Elapsed);
        }

        await healthy;
        Assert.All(codes.Take(14), c => Assert.Equal(MqttClientPublishReasonCode.Success, c));
        Assert.All(codes.Skip(14), c => Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, c));
        Assert.True(took[14] >= TimeSpan.FromSeconds(HoldSeconds * 0.9), $"the first refused publish was answered after {took[14]}, before the hold");
        Assert.True(took.Skip(15).Max() < TimeSpan.FromSeconds(HoldSeconds / 2), "after the hold, a full queue refuses at once");

        // The healthy publisher never waited on the stuck queue (one hold would have cost it HoldSeconds).
        Assert.True(healthyLatencies.Max() < TimeSpan.FromSeconds(HoldSeconds / 2), $"healthy PUBACK took up to {healthyLatencies.Max()}");
        await healthyReceived.WaitForAsync(60);
        Assert.Equal(6, broker.Server.Context.Metrics.RefusedQueueFull);
        Assert.Equal(0, broker.Server.Context.Metrics.DroppedQueueFull);
    }
}
