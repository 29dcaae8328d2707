using System.Text;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// Topics in a JWT's <c>acl</c> claim ({"pub":[..],"sub":[..],"all":[..]}, %c and %u replaced), with real HS256
/// tokens over real connections: enforced on PUBLISH, SUBSCRIBE and delivery for the life of the connection, and
/// chained with the ACL file (a grant of either allows).
/// </summary>
public sealed class JwtAuthorizationSpecs : IDisposable
{
    private const string Secret = "a-shared-secret-of-at-least-32-characters!";
    private readonly SecurityTestFiles _files = new();

    [Theory]
    [InlineData(ClientVersion.V311, MqttReasonCode.Success, MqttReasonCode.UnspecifiedError)]
    [InlineData(ClientVersion.V500, MqttReasonCode.NotAuthorized, MqttReasonCode.NotAuthorized)]
    public async Task The_claim_decides_what_the_client_may_publish_and_subscribe(ClientVersion version, MqttReasonCode deniedPub, MqttReasonCode deniedSub)
    {
        await using var broker = await StartAsync();
        var token = Token(new() { ["pub"] = ["devices/%c/up"], ["sub"] = ["devices/%c/down/#"], ["all"] = ["chat/%u/#"] });
        await using var device = await Login(broker, version, "dev-7", "u1", token);
        await using var monitor = await Login(broker, ClientVersion.V500, "mon", "monitor", Token(new() { ["all"] = ["#"] }));
        Assert.Equal(MqttReasonCode.GrantedQoS1, (await monitor.SubscribeAsync(1, "#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);

        Assert.Equal([MqttReasonCode.Success, deniedPub, MqttReasonCode.Success, deniedPub],
            await PublishAllAsync(device, "devices/dev-7/up", "devices/dev-8/up", "chat/u1/room", "devices/dev-7/down/x"));
        await device.SendAsync(new MqttSubscribePacket
        {
            PacketId = 9,
            Subscriptions =
            [
                new MqttTopicSubscription { TopicFilter = "devices/dev-7/down/#", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = "devices/+/down/#", QoS = MqttQoS.AtLeastOnce },
                new MqttTopicSubscription { TopicFilter = "chat/u1/#", QoS = MqttQoS.AtMostOnce },
                new MqttTopicSubscription { TopicFilter = "devices/dev-7/up", QoS = MqttQoS.AtMostOnce },
            ],
        });
        Assert.Equal([MqttReasonCode.GrantedQoS1, deniedSub, MqttReasonCode.GrantedQoS0, deniedSub],
            (await device.ExpectAsync<MqttSubAckPacket>()).ReasonCodes.ToArray());

        // Only the two allowed publishes reached the monitor.
        foreach (var topic in new[] { "devices/dev-7/up", "chat/u1/room" })
        {
            var received = await monitor.ExpectAsync<MqttPublishPacket>();
            Assert.Equal(topic, received.Topic);
            await monitor.SendAsync(new MqttPubAckPacket { PacketId = received.PacketId });
        }

        await monitor.AssertSilentAsync(E2E.Quiet);
    }

    [Fact]
    public async Task The_claim_and_the_ACL_file_each_grant_and_what_neither_grants_is_denied()
    {
        File.WriteAllText(_files.AclFile, "user u1\ntopic write extra/#\n");
        await using var broker = await StartAsync(o => o with { Auth = o.Auth with { AclFile = _files.AclFile } });
        await using var device = await Login(broker, ClientVersion.V500, "dev-9", "u1", Token(new() { ["pub"] = ["devices/%c/up"] }));
        Assert.Equal([MqttReasonCode.Success, MqttReasonCode.Success, MqttReasonCode.NotAuthorized],
            await PublishAllAsync(device, "devices/dev-9/up", "extra/a", "other/a"));

        // A token without the claim: the ACL file alone, as for a password.
        await using var plain = await Login(broker, ClientVersion.V500, "dev-10", "u1", Token(null));
        Assert.Equal([MqttReasonCode.NotAuthorized, MqttReasonCode.Success], await PublishAllAsync(plain, "devices/dev-10/up", "extra/a"));
    }

    [Fact]
    public async Task A_narrower_token_on_reconnect_stops_deliveries_of_subscriptions_the_session_kept()
    {
        await using var broker = await StartAsync();
        await using (var wide = await Login(broker, ClientVersion.V500, "dev-11", "u2", Token(new() { ["sub"] = ["feed/#"] }), persistent: true))
        {
            Assert.Equal(MqttReasonCode.GrantedQoS1, (await wide.SubscribeAsync(1, "feed/#", MqttQoS.AtLeastOnce)).ReasonCodes[0]);
            await wide.SendAsync(new MqttDisconnectPacket());
        }

        await using var narrow = await Login(broker, ClientVersion.V500, "dev-11", "u2", Token(new() { ["sub"] = ["feed/a"] }), persistent: true);
        await using var publisher = await Login(broker, ClientVersion.V500, "pub-11", "p", Token(new() { ["pub"] = ["#"] }));
        await PublishAllAsync(publisher, "feed/b", "feed/a");
        var received = await narrow.ExpectAsync<MqttPublishPacket>();
        Assert.Equal("feed/a", received.Topic);
        await narrow.SendAsync(new MqttPubAckPacket { PacketId = received.PacketId });
        await narrow.AssertSilentAsync(E2E.Quiet);
        Assert.True(broker.Server.Context.Metrics.AclDeniedDelivery >= 1);
    }

    [Theory]
    [InlineData("""{"pub":"devices/#"}""")]
    [InlineData("""{"pub":["devices/#/x"]}""")]
    [InlineData("""{"publish":["a"]}""")]
    [InlineData("""["a"]""")]
    public async Task A_token_whose_acl_claim_does_not_parse_is_refused(string claim)
    {
        await using var broker = await StartAsync();
        var token = new JsonWebTokenHandler().CreateToken(
            $$"""{"sub":"dev","exp":{{DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds()}},"acl":{{claim}}}""",
            Credentials());
        var (client, connAck) = await Broker.Tests.Security.Credentials.ConnectAsync(broker.Port, ClientVersion.V500, "dev-bad", "u3", token);
        await client.DisposeAsync();
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, connAck.ReasonCode);
    }

    public void Dispose() => _files.Dispose();

    private static Task<BrokerHarness> StartAsync(Func<BrokerOptions, BrokerOptions>? more = null) =>
        BrokerHarness.StartAsync(o =>
        {
            o = o with { Auth = o.Auth with { AllowAnonymous = false, Jwt = new JwtAuthOptions { Secret = Secret } } };
            return more?.Invoke(o) ?? o;
        });

    private static SigningCredentials Credentials() =>
        new(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Secret)), SecurityAlgorithms.HmacSha256);

    /// <summary>An HS256 token valid for five minutes, with the <c>acl</c> claim when <paramref name="acl"/> is given.</summary>
    private static string Token(Dictionary<string, string[]>? acl)
    {
        var claims = new Dictionary<string, object> { ["sub"] = "dev" };
        if (acl is not null)
        {
            claims["acl"] = acl.ToDictionary(kv => kv.Key, kv => (object)kv.Value);
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Expires = DateTime.UtcNow.AddMinutes(5),
            SigningCredentials = Credentials(),
        });
    }

    private static async Task<RawMqttClient> Login(BrokerHarness broker, ClientVersion version, string clientId, string user, string token, bool persistent = false)
    {
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, version, clientId, c => c with
        {
            Username = user,
            Password = Encoding.UTF8.GetBytes(token),
            CleanStart = !persistent,
            SessionExpiryInterval = persistent ? 300u : 0u,
        });
        Assert.Equal(0, connAck.ReasonCode);
        return client;
    }

    private static async Task<MqttReasonCode[]> PublishAllAsync(RawMqttClient client, params string[] topics)
    {
        var codes = new List<MqttReasonCode>();
        ushort id = 1;
        foreach (var topic in topics)
        {
            await client.SendAsync(new MqttPublishPacket { Topic = topic, Payload = Encoding.UTF8.GetBytes(topic), QoS = MqttQoS.AtLeastOnce, PacketId = id++ });
            codes.Add((await client.ExpectAsync<MqttPubAckPacket>()).ReasonCode);
        }

        return codes.ToArray();
    }
}
