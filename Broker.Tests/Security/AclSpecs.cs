using System.Text;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>Auth:AclFile over real connections: PUBLISH, SUBSCRIBE and delivery refused as the issue asks, and reloads.</summary>
public sealed class AclSpecs
{
    private const string Acl = """
        topic read public/#
        user alice
        topic readwrite alice/#
        topic deny alice/secret/#
        user monitor
        topic readwrite #
        pattern readwrite clients/%c/#
        """;

    private static async Task<BrokerHarness> StartAsync(SecurityTestFiles files, string acl = Acl)
    {
        File.WriteAllText(files.AclFile, acl);
        var passwords = files.WritePasswords(("alice", "pa"), ("monitor", "pm"));
        return await BrokerHarness.StartAsync(o => o with
        {
            Auth = o.Auth with { PasswordFile = passwords, AclFile = files.AclFile, AllowAnonymous = true, ReloadInterval = 1 },
        });
    }

    private static async Task<RawMqttClient> Login(BrokerHarness broker, ClientVersion version, string clientId, string? user)
    {
        var (client, connAck) = await Credentials.ConnectAsync(broker.Port, version, clientId, user, user switch
        {
            "alice" => "pa",
            "monitor" => "pm",
            _ => null,
        });
        Assert.Equal(0, connAck.ReasonCode);
        return client;
    }

    private static MqttPublishPacket Publish(string topic, ushort id, MqttQoS qos = MqttQoS.AtLeastOnce) =>
        new() { Topic = topic, Payload = Encoding.UTF8.GetBytes(topic), QoS = qos, PacketId = id };

    [Theory]
    [InlineData(ClientVersion.V311, MqttReasonCode.Success)]
    [InlineData(ClientVersion.V500, MqttReasonCode.NotAuthorized)]
    public async Task A_denied_PUBLISH_is_answered_with_0x87_in_v5_acknowledged_in_311_and_never_delivered(ClientVersion version, MqttReasonCode expected)
    {
        using var files = new SecurityTestFiles();
        await using var broker = await StartAsync(files);
        await using var monitor = await Login(broker, ClientVersion.V500, "monitor-1", "monitor");
        Assert.Equal(MqttReasonCode.GrantedQoS1, (await monitor.SubscribeAsync(1, "#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);
        await using var alice = await Login(broker, version, "alice-1", "alice");

        await alice.SendAsync(Publish("elsewhere/x", 1));
        var denied = await alice.ExpectAsync<MqttPubAckPacket>();
        Assert.Equal(expected, denied.ReasonCode);
        await alice.SendAsync(Publish("alice/ok", 2));
        Assert.Equal(MqttReasonCode.Success, (await alice.ExpectAsync<MqttPubAckPacket>()).ReasonCode);

        // QoS 2: v5 PUBREC 0x87 ends the exchange; 3.1.1 completes it as usual.
        await alice.SendAsync(Publish("elsewhere/y", 3, MqttQoS.ExactlyOnce));
        Assert.Equal(expected, (await alice.ExpectAsync<MqttPubRecPacket>()).ReasonCode);

        var received = await monitor.ExpectAsync<MqttPublishPacket>();
        Assert.Equal("alice/ok", received.Topic);
        await monitor.SendAsync(new MqttPubAckPacket { PacketId = received.PacketId });
        await monitor.AssertSilentAsync(E2E.Quiet);
        Assert.Equal(2, broker.Server.Context.Metrics.AclDeniedPublish);
    }

    [Theory]
    [InlineData(ClientVersion.V311, MqttReasonCode.UnspecifiedError)]
    [InlineData(ClientVersion.V500, MqttReasonCode.NotAuthorized)]
    public async Task A_denied_SUBSCRIBE_filter_gets_0x80_or_0x87_in_its_place_and_the_others_are_granted(ClientVersion version, MqttReasonCode expected)
    {
        using var files = new SecurityTestFiles();
        await using var broker = await StartAsync(files);
        await using var alice = await Login(broker, version, "alice-2", "alice");

        await alice.SendAsync(new MqttSubscribePacket
        {
            PacketId = 7,
            Subscriptions =
            [
                new MqttTopicSubscription { TopicFilter = "alice/#", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = "#", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = "clients/alice-2/+", QoS = MqttQoS.AtMostOnce },
                new MqttTopicSubscription { TopicFilter = "clients/someone-else/+", QoS = MqttQoS.AtMostOnce },
            ],
        });
        var subAck = await alice.ExpectAsync<MqttSubAckPacket>();
        Assert.Equal(7, subAck.PacketId);
        Assert.Equal([MqttReasonCode.GrantedQoS1, expected, MqttReasonCode.GrantedQoS0, expected], subAck.ReasonCodes.ToArray());

        // Refused entirely: answered without the session.
        Assert.Equal([expected], (await alice.SubscribeAsync(8, "public/#", MqttQoS.AtMostOnce)).ReasonCodes.ToArray());
        Assert.Equal(3, broker.Server.Context.Metrics.AclDeniedSubscribe);
    }

    [Fact]
    public async Task A_message_under_a_permitted_wildcard_but_on_a_denied_topic_never_reaches_the_client()
    {
        using var files = new SecurityTestFiles();
        await using var broker = await StartAsync(files);
        await using var alice = await Login(broker, ClientVersion.V500, "alice-3", "alice");
        Assert.Equal(MqttReasonCode.GrantedQoS1, (await alice.SubscribeAsync(1, "alice/#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);
        await using var monitor = await Login(broker, ClientVersion.V500, "monitor-3", "monitor");

        // A retained message on the denied topic must not come through at SUBSCRIBE either.
        await monitor.SendAsync(Publish("alice/secret/plans", 1) with { Retain = true });
        await monitor.ExpectAsync<MqttPubAckPacket>();
        await monitor.SendAsync(Publish("alice/secret/plans", 2));
        await monitor.ExpectAsync<MqttPubAckPacket>();
        await monitor.SendAsync(Publish("alice/open", 3));
        await monitor.ExpectAsync<MqttPubAckPacket>();

        var received = await alice.ExpectAsync<MqttPublishPacket>();
        Assert.Equal("alice/open", received.Topic);
        await alice.SendAsync(new MqttPubAckPacket { PacketId = received.PacketId });
        await using var late = await Login(broker, ClientVersion.V500, "alice-4", "alice");
        Assert.Equal(MqttReasonCode.GrantedQoS1, (await late.SubscribeAsync(1, "alice/#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);
        await late.AssertSilentAsync(E2E.Quiet);
        await alice.AssertSilentAsync(E2E.Quiet);
        Assert.True(broker.Server.Context.Metrics.AclDeniedDelivery >= 2);
    }

    [Fact]
    public async Task A_will_on_a_topic_the_client_may_not_publish_to_refuses_the_CONNECT()
    {
        using var files = new SecurityTestFiles();
        await using var broker = await StartAsync(files);
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "alice-will", c => c with
        {
            Username = "alice",
            Password = Encoding.UTF8.GetBytes("pa"),
            Will = new MqttWill { Topic = "elsewhere/will", Payload = Encoding.UTF8.GetBytes("bye") },
        });
        Assert.Equal((byte)MqttReasonCode.NotAuthorized, connAck.ReasonCode);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task An_edited_ACL_applies_without_a_restart_and_a_broken_edit_keeps_the_previous_rules()
    {
        using var files = new SecurityTestFiles();
        await using var broker = await StartAsync(files);
        await using var alice = await Login(broker, ClientVersion.V500, "alice-5", "alice");
        await alice.SendAsync(Publish("extra/x", 1));
        Assert.Equal(MqttReasonCode.NotAuthorized, (await alice.ExpectAsync<MqttPubAckPacket>()).ReasonCode);

        files.Replace(files.AclFile, Acl.Replace("user monitor", "topic write extra/#\nuser monitor", StringComparison.Ordinal));
        ushort id = 2;
        MqttReasonCode code;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        do
        {
            await alice.SendAsync(Publish("extra/x", id++));
            code = (await alice.ExpectAsync<MqttPubAckPacket>()).ReasonCode;
        }
        while (code != MqttReasonCode.Success && DateTime.UtcNow < deadline && await Delay());
        Assert.Equal(MqttReasonCode.Success, code);

        // A broken file (line 3) is not taken: extra/# stays writable.
        files.Replace(files.AclFile, "user alice\ntopic alice/#\nbogus line\n");
        broker.Server.Context.Security.CheckFiles();
        await alice.SendAsync(Publish("extra/y", id));
        Assert.Equal(MqttReasonCode.Success, (await alice.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
    }

    private static async Task<bool> Delay()
    {
        await Task.Delay(100);
        return true;
    }
}
