using System.Diagnostics;
using System.Text;
using Broker.Configuration;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Xunit.Abstractions;

namespace Broker.Tests.Persistence;

/// <summary>
/// Offline persistent sessions leave memory and come back from storage when addressed; a node with many stored
/// sessions starts without waking them, routes to them, and still expires them on time.
/// </summary>
public sealed class SessionsAtScaleSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "broker-scale-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Task<BrokerHarness> StartAsync(int passivateAfterSeconds = 1) =>
        BrokerHarness.StartAsync(o => o with
        {
            Node = new NodeOptions { DataDir = _dataDir },
            Sessions = o.Sessions with { PassivateAfterSeconds = passivateAfterSeconds },
        });

    private void Say(string line) => output.WriteLine(line);

    [Fact]
    public async Task A_publish_routed_to_a_passivated_offline_persistent_session_is_stored_and_delivered_when_its_client_returns()
    {
        await using var broker = await StartAsync();
        var subscriber = broker.NewClient();
        await subscriber.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "passive-sub").WithCleanStart(true)
            .WithSessionExpiryInterval(3600).Build());
        await subscriber.SubscribeAsync("passive/cmd", MqttQualityOfServiceLevel.AtLeastOnce);
        await subscriber.SubscribeAsync("passive/+/state", MqttQualityOfServiceLevel.ExactlyOnce);
        Assert.Contains("passive-sub", await StoredSessions.InMemoryAsync(broker.Server)); // connected: stays
        await subscriber.DisconnectAsync();

        await StoredSessions.WaitPassivatedAsync(broker.Server, ["passive-sub"], TimeSpan.FromSeconds(20));
        var rowsBefore = await StoredSessions.JournalRowsAsync(broker.Server, "passive-sub");

        // Routed through the topic entity (exact) and the wildcard index to the session region, which starts the
        // entity again from its journal; the PUBACK means it is stored.
        var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "passive-pub");
        var exact = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("passive/cmd").WithPayload("open")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var wildcard = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("passive/7/state").WithPayload("on")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.ExactlyOnce).Build());
        Assert.True(exact.IsSuccess);
        Assert.True(wildcard.IsSuccess);

        // Both are in the session's journal, and the session leaves memory again: what it queued lives in storage only.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await StoredSessions.JournalRowsAsync(broker.Server, "passive-sub") < rowsBefore + 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the two messages were not journaled by the session");
            await Task.Delay(100);
        }

        await StoredSessions.WaitPassivatedAsync(broker.Server, ["passive-sub"], TimeSpan.FromSeconds(20));

        var returning = broker.NewClient();
        var received = new MessageCollector(returning);
        var result = await returning.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "passive-sub").WithCleanStart(false)
            .WithSessionExpiryInterval(3600).Build());
        Assert.True(result.IsSessionPresent);
        var messages = await received.WaitForAsync(2);
        Assert.Equal(["open", "on"], messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToArray());
        Assert.Equal(["passive/cmd", "passive/7/state"], messages.Select(m => m.Topic).ToArray());

        // Connected again: it does not passivate, however quiet it is.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Contains("passive-sub", await StoredSessions.InMemoryAsync(broker.Server));
    }

    [Fact]
    public async Task A_node_with_20000_stored_sessions_is_ready_without_waking_them_routes_to_them_and_expires_them_on_time()
    {
        const int count = 20_000;
        static string IdOf(int i) => $"fleet-{i}";
        static string FilterOf(int i) => i % 2 == 0 ? $"fleet/{i}/cmd" : $"fleet/{i}/+/set";
        static string TopicOf(int i) => i % 2 == 0 ? $"fleet/{i}/cmd" : $"fleet/{i}/lamp/set";
        const uint expiringAfter = 12;
        long expiresAtMs;

        // Most sessions are written into storage the way the broker stores them (StoredSessionSeeder); a few hundred
        // more go through MQTT (every write path of the broker: journal, topic entities, index rows). Both are read
        // back alike.
        const int throughBroker = 300;
        var options = new BrokerOptions { Node = new NodeOptions { DataDir = _dataDir } };
        var bulk = Stopwatch.StartNew();
        await Broker.LoadTests.StoredSessionSeeder.SeedAsync(options, throughBroker, count - throughBroker, IdOf, FilterOf, 3600);
        Say($"wrote {count - throughBroker} stored sessions in {bulk.Elapsed.TotalSeconds:F1} s");

        await using (var broker = await StartAsync())
        {
            var seeding = Stopwatch.StartNew();
            await StoredSessions.SeedAsync(broker.Port, throughBroker, IdOf, FilterOf);
            Say($"created {throughBroker} stored sessions through the broker in {seeding.Elapsed.TotalSeconds:F1} s");
            await StoredSessions.SeedAsync(broker.Port, 1, _ => "fleet-expiring", _ => "fleet/expiring/#", expiringAfter, 1);
            expiresAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + (expiringAfter * 1000);
        }

        var starting = Stopwatch.StartNew();
        await using (var broker = await StartAsync())
        {
            Say($"ready after {starting.Elapsed.TotalSeconds:F1} s with {count + 1} stored sessions");

            // Nothing was woken to get here: no stored session is in memory, yet every wildcard route is known.
            var inMemory = await StoredSessions.InMemoryAsync(broker.Server);
            Assert.DoesNotContain(inMemory, id => id.StartsWith("fleet-", StringComparison.Ordinal) && id != "fleet-expiring");
            Assert.Equal(((count + 1) / 2) + 1, broker.Server.Context.Wildcards.Count);
            Assert.True(await StoredSessions.JournalRowsAsync(broker.Server, "fleet-expiring") > 0);

            // The short-lived session expires on time although nobody addresses it: found by its stored deadline.
            var expiry = Task.Run(async () =>
            {
                while (await StoredSessions.JournalRowsAsync(broker.Server, "fleet-expiring") > 0)
                {
                    var late = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - expiresAtMs;
                    Assert.True(late < 5_000, $"the session is {late} ms past its expiry and still stored");
                    await Task.Delay(100);
                }

                return DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            });

            // A publish accepted after "ready" reaches stored subscribers of exact topics and of wildcard filters.
            var sample = Enumerable.Range(0, 40).Select(k => ((k * 499) + (k % 2)) % count)
                .Concat([0, 1, throughBroker - 2, throughBroker - 1]).Distinct().ToList();
            var publisher = await broker.ConnectAsync(MqttProtocolVersion.V500, "fleet-publisher");
            var publishing = Stopwatch.StartNew();
            var acks = await Task.WhenAll(sample.Select(i => publisher.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic(TopicOf(i)).WithPayload($"m{i}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build())));
            Assert.All(acks, ack => Assert.True(ack.IsSuccess, ack.ReasonCode.ToString()));
            Say($"{sample.Count} publishes to stored subscribers acknowledged in {publishing.Elapsed.TotalSeconds:F1} s");

            var endedAt = await expiry;
            Say($"fleet-expiring ended {endedAt - expiresAtMs} ms after its deadline");
            Assert.True(endedAt >= expiresAtMs - 1_000, $"ended {expiresAtMs - endedAt} ms before its deadline");

            foreach (var i in sample)
            {
                var client = broker.NewClient();
                var received = new MessageCollector(client);
                var result = await client.ConnectAsync(broker.Options(MqttProtocolVersion.V500, IdOf(i)).WithCleanStart(false)
                    .WithSessionExpiryInterval(3600).Build());
                Assert.True(result.IsSessionPresent, IdOf(i));
                var messages = await received.WaitForAsync(1);
                Assert.Equal($"m{i}", Encoding.UTF8.GetString(messages[0].Payload));
                await client.DisconnectAsync();
            }

            var gone = broker.NewClient();
            var expired = await gone.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "fleet-expiring").WithCleanStart(false).Build());
            Assert.False(expired.IsSessionPresent);
        }
    }
}
