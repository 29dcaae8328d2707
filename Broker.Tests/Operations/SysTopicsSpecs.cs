using System.Text.RegularExpressions;
using Broker.Operations;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Broker.Tests.Operations;

/// <summary>$SYS topics published by the node (Sys:Interval = 1 s here), received by real MQTT clients.</summary>
public sealed class SysTopicsSpecs
{
    [Fact]
    public async Task A_SYS_subscriber_receives_uptime_version_and_the_connected_clients()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Sys = new Configuration.SysOptions { Interval = 1 } });
        var client = await broker.ConnectAsync(MqttProtocolVersion.V311, "sys-reader");
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        var connectedIsOne = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += e =>
        {
            var text = E2E.Text(e.ApplicationMessage);
            seen[e.ApplicationMessage.Topic] = text;
            if (e.ApplicationMessage.Topic == "$SYS/broker/clients/connected" && text == "1")
            {
                connectedIsOne.TrySetResult();
            }

            return Task.CompletedTask;
        };
        await client.SubscribeAsync("$SYS/broker/#", MqttQualityOfServiceLevel.AtMostOnce);
        await client.SubscribeAsync("$SYS/brokers/+/uptime", MqttQualityOfServiceLevel.AtMostOnce);

        // The retained values arrive at once; the next interval counts this client.
        await connectedIsOne.Task.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Matches(new Regex(@"^\d+ seconds$"), seen["$SYS/broker/uptime"]);
        Assert.StartsWith("clustered-mqtt-broker ", seen["$SYS/broker/version"]);
        Assert.True(seen.ContainsKey("$SYS/broker/load/messages/received/1min"));
        Assert.Matches(new Regex(@"^\d+$"), seen["$SYS/broker/retained messages/count"]);

        // This node's own names (its cluster address) carry the same figures.
        var self = Akka.Cluster.Cluster.Get(broker.Server.System).SelfAddress;
        var nodeUptime = SysTopicsActor.NodePrefix(self) + "/uptime";
        Assert.Equal($"$SYS/brokers/127.0.0.1:{self.Port}/uptime", nodeUptime);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!seen.ContainsKey(nodeUptime) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.Matches(new Regex(@"^\d+ seconds$"), seen[nodeUptime]);

        // Messages received count what clients published.
        await client.PublishStringAsync("sys/test", "x");
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (seen.GetValueOrDefault("$SYS/broker/messages/received") != "1" && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.Equal("1", seen["$SYS/broker/messages/received"]);
    }

    [Theory]
    [InlineData("#")]
    [InlineData("+/broker/uptime")]
    [InlineData("+/#")]
    public async Task SYS_topics_do_not_match_filters_that_start_with_a_wildcard(string filter)
    {
        // [MQTT-4.7.2-1] "The Server MUST NOT match Topic Filters starting with a wildcard character (# or +) with Topic
        // Names beginning with a $ character."
        await using var broker = await BrokerHarness.StartAsync(o => o with { Sys = new Configuration.SysOptions { Interval = 1 } });
        var sysReader = await broker.ConnectAsync(MqttProtocolVersion.V500, "sys-control");
        var sys = new MessageCollector(sysReader);
        await sysReader.SubscribeAsync("$SYS/broker/uptime", MqttQualityOfServiceLevel.AtMostOnce);
        var wildcard = await broker.ConnectAsync(MqttProtocolVersion.V500, "sys-wildcard");
        var received = new MessageCollector(wildcard);
        await wildcard.SubscribeAsync(filter, MqttQualityOfServiceLevel.AtMostOnce);

        // $SYS/broker/uptime is republished every second: wait for two of them (one retained, one live) ...
        await sys.WaitForAsync(2, TimeSpan.FromSeconds(15));

        // ... while the wildcard subscriber got nothing from $SYS; it does get an ordinary topic that matches.
        var ordinary = filter == "+/broker/uptime" ? "plain/broker/uptime" : "plain/topic";
        await sysReader.PublishStringAsync(ordinary, "y");
        var messages = await received.WaitForAsync(1);
        Assert.All(messages, m => Assert.False(m.Topic.StartsWith('$'), m.Topic));
        await received.AssertNoMoreAsync(1, E2E.Quiet);
    }
}
