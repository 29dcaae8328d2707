using System.Text;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using MQTTnet;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// Auth:Http:AclUrl against a real HTTP service the test runs: PUBLISH and SUBSCRIBE are asked about, denials get
/// the ACL file's answers (v5 0x87; 3.1.1 acknowledged and dropped, SUBACK 0x80), ignore and no answer go on to the
/// ACL file, answers are cached, a slow service keeps a publisher's order, and deliveries are never asked about.
/// </summary>
public sealed class HttpAuthorizationSpecs : IDisposable
{
    private readonly SecurityTestFiles _files = new();

    [Theory]
    [InlineData(ClientVersion.V311, MqttReasonCode.Success)]
    [InlineData(ClientVersion.V500, MqttReasonCode.NotAuthorized)]
    public async Task A_PUBLISH_the_service_denies_gets_0x87_in_v5_is_acknowledged_and_dropped_in_311(ClientVersion version, MqttReasonCode expected)
    {
        using var service = new AuthService(q => Str(q, "action") == "subscribe" || Str(q, "topic").StartsWith("ok/") ? "allow" : "deny");
        await using var broker = await StartAsync(service.Url);
        await using var monitor = await Login(broker, ClientVersion.V500, "hacl-monitor-" + version, "monitor");
        Assert.Equal(MqttReasonCode.GrantedQoS1, (await monitor.SubscribeAsync(1, "#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);
        await using var device = await Login(broker, version, "hacl-dev-" + version, "dev");

        await device.SendAsync(Publish("no/x", 1));
        Assert.Equal(expected, (await device.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
        await device.SendAsync(Publish("ok/y", 2) with { Retain = true });
        Assert.Equal(MqttReasonCode.Success, (await device.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
        await device.SendAsync(Publish("no/z", 3, MqttQoS.ExactlyOnce));
        Assert.Equal(expected, (await device.ExpectAsync<MqttPubRecPacket>()).ReasonCode);

        var received = await monitor.ExpectAsync<MqttPublishPacket>();
        Assert.Equal("ok/y", received.Topic);
        await monitor.SendAsync(new MqttPubAckPacket { PacketId = received.PacketId });
        await monitor.AssertSilentAsync(E2E.Quiet);
        Assert.Equal(2, broker.Server.Context.Metrics.AclDeniedPublish);

        var asked = service.Questions.Single(q => Str(q, "topic") == "ok/y");
        Assert.Equal("hacl-dev-" + version, Str(asked, "clientId"));
        Assert.Equal("dev", Str(asked, "username"));
        Assert.Equal("publish", Str(asked, "action"));
        Assert.Equal(1, asked.GetProperty("qos").GetInt32());
        Assert.True(asked.GetProperty("retain").GetBoolean());
    }

    [Theory]
    [InlineData(ClientVersion.V311, MqttReasonCode.UnspecifiedError)]
    [InlineData(ClientVersion.V500, MqttReasonCode.NotAuthorized)]
    public async Task A_filter_the_service_denies_gets_0x80_or_0x87_in_its_place_in_the_SUBACK(ClientVersion version, MqttReasonCode expected)
    {
        using var service = new AuthService(q => Str(q, "topic").StartsWith("ok/") ? "allow" : "deny");
        await using var broker = await StartAsync(service.Url);
        await using var device = await Login(broker, version, "hacl-sub-" + version, "dev");

        await device.SendAsync(new MqttSubscribePacket
        {
            PacketId = 7,
            Subscriptions =
            [
                new MqttTopicSubscription { TopicFilter = "ok/#", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = "no/#", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = "$share/g/ok/x", QoS = MqttQoS.AtMostOnce },
            ],
        });
        var subAck = await device.ExpectAsync<MqttSubAckPacket>();
        Assert.Equal([MqttReasonCode.GrantedQoS1, expected, MqttReasonCode.GrantedQoS0], subAck.ReasonCodes.ToArray());
        Assert.Equal([expected], (await device.SubscribeAsync(8, "no/more", MqttQoS.AtMostOnce)).ReasonCodes.ToArray());

        // A shared subscription is asked about its inner filter, with the QoS asked for.
        var shared = service.Questions.Single(q => Str(q, "topic") == "ok/x");
        Assert.Equal("subscribe", Str(shared, "action"));
        Assert.Equal(0, shared.GetProperty("qos").GetInt32());
        Assert.Equal(2, broker.Server.Context.Metrics.AclDeniedSubscribe);
    }

    [Fact]
    public async Task Ignore_and_no_answer_when_not_fail_closed_let_the_ACL_file_decide_and_no_answer_denies_by_default()
    {
        File.WriteAllText(_files.AclFile, "user dev\ntopic readwrite dev/#\n");
        using var service = new AuthService(_ => "ignore");
        await using (var ignoring = await StartAsync(service.Url, o => o with { Auth = o.Auth with { AclFile = _files.AclFile } }))
        {
            await using var dev = await Login(ignoring, ClientVersion.V500, "hacl-ignore", "dev");
            Assert.Equal([MqttReasonCode.Success, MqttReasonCode.NotAuthorized], await PublishAllAsync(dev, "dev/a", "other/a"));
        }

        var nobody = $"http://127.0.0.1:{InteropEnvironment.FreePort()}/acl";
        await using (var closed = await StartAsync(nobody, o => o with { Auth = o.Auth with { AclFile = _files.AclFile } }))
        {
            await using var dev = await Login(closed, ClientVersion.V500, "hacl-closed", "dev");
            Assert.Equal([MqttReasonCode.NotAuthorized], await PublishAllAsync(dev, "dev/a"));
        }

        await using var open = await StartAsync(nobody, o => o with
        {
            Auth = o.Auth with { AclFile = _files.AclFile, Http = o.Auth.Http with { FailClosed = false } },
        });
        await using var dev2 = await Login(open, ClientVersion.V500, "hacl-open", "dev");
        Assert.Equal([MqttReasonCode.Success, MqttReasonCode.NotAuthorized], await PublishAllAsync(dev2, "dev/a", "other/a"));
    }

    [Fact]
    public async Task Answers_are_cached_for_AclCacheSeconds_and_asked_every_time_with_0()
    {
        using var service = new AuthService(_ => "allow");
        await using (var cached = await StartAsync(service.Url))
        {
            await using var dev = await Login(cached, ClientVersion.V500, "hacl-cache", "dev");
            await PublishAllAsync(dev, "t/1", "t/1", "t/1", "t/2");
            Assert.Equal(["t/1", "t/2"], service.Questions.Select(q => Str(q, "topic")).ToArray());
        }

        using var uncachedService = new AuthService(_ => "allow");
        await using var uncached = await StartAsync(uncachedService.Url, o => o with { Auth = o.Auth with { Http = o.Auth.Http with { AclCacheSeconds = 0 } } });
        await using var dev2 = await Login(uncached, ClientVersion.V500, "hacl-nocache", "dev");
        await PublishAllAsync(dev2, "t/1", "t/1", "t/1");
        Assert.Equal(3, uncachedService.Questions.Count);
    }

    [Fact]
    public async Task A_slow_service_keeps_a_publishers_messages_in_order_and_deliveries_are_not_asked_about()
    {
        using var service = new AuthService(_ => "allow") { Delay = TimeSpan.FromMilliseconds(150) };
        // The ACL file grants nothing to "dev": what it receives comes through the filter the service allowed.
        File.WriteAllText(_files.AclFile, "user nobody\ntopic readwrite x\n");
        await using var broker = await StartAsync(service.Url, o => o with { Auth = o.Auth with { AclFile = _files.AclFile } });
        var subscriber = await broker.ConnectAsync(ClientVersion.V500, "hacl-order-sub", b => b.WithCredentials("dev", "x"));
        var collector = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("order/#", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await broker.ConnectAsync(ClientVersion.V311, "hacl-order-pub", b => b.WithCredentials("dev", "x"));

        const int count = 30;
        for (var i = 0; i < count; i++)
        {
            // Five topics in turn: the first message on each waits for the service while the next ones arrive.
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"order/{i % 5}").WithPayload(i.ToString()).Build());
        }

        // One publisher, one topic: in order (topics are routed independently, so only per topic is promised).
        var received = await collector.WaitForAsync(count);
        for (var t = 0; t < 5; t++)
        {
            var expected = Enumerable.Range(0, count).Where(i => i % 5 == t).Select(i => i.ToString());
            Assert.Equal(expected, received.Where(m => m.Topic == $"order/{t}").Select(m => Encoding.UTF8.GetString(m.Payload)));
        }

        var questions = service.Questions;
        Assert.Equal(1, questions.Count(q => Str(q, "action") == "subscribe"));
        Assert.Equal(5, questions.Count(q => Str(q, "action") == "publish"));
    }

    [Fact]
    public async Task A_will_on_a_topic_the_service_denies_refuses_the_CONNECT()
    {
        using var service = new AuthService(q => Str(q, "topic") == "wills/ok" ? "allow" : "deny");
        await using var broker = await StartAsync(service.Url);
        foreach (var (topic, code) in new[] { ("wills/no", MqttReasonCode.NotAuthorized), ("wills/ok", MqttReasonCode.Success) })
        {
            var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "hacl-will", c => c with
            {
                Will = new MqttWill { Topic = topic, Payload = Encoding.UTF8.GetBytes("bye") },
            });
            Assert.Equal((byte)code, connAck.ReasonCode);
            await client.DisposeAsync();
        }
    }

    public void Dispose() => _files.Dispose();

    private static string Str(System.Text.Json.JsonElement e, string name) => e.GetProperty(name).GetString() ?? "";

    private static Task<BrokerHarness> StartAsync(string url, Func<BrokerOptions, BrokerOptions>? more = null) =>
        BrokerHarness.StartAsync(o =>
        {
            o = o with { Auth = o.Auth with { AllowAnonymous = true, Http = new HttpAuthOptions { AclUrl = url, TimeoutSeconds = 2 } } };
            return more?.Invoke(o) ?? o;
        });

    private static async Task<RawMqttClient> Login(BrokerHarness broker, ClientVersion version, string clientId, string user)
    {
        var (client, connAck) = await Credentials.ConnectAsync(broker.Port, version, clientId, user, "x");
        Assert.Equal(0, connAck.ReasonCode);
        return client;
    }

    private static MqttPublishPacket Publish(string topic, ushort id, MqttQoS qos = MqttQoS.AtLeastOnce) =>
        new() { Topic = topic, Payload = Encoding.UTF8.GetBytes(topic), QoS = qos, PacketId = id };

    private static async Task<MqttReasonCode[]> PublishAllAsync(RawMqttClient client, params string[] topics)
    {
        var codes = new List<MqttReasonCode>();
        ushort id = 1;
        foreach (var topic in topics)
        {
            await client.SendAsync(Publish(topic, id++));
            codes.Add((await client.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
        }

        return codes.ToArray();
    }
}
