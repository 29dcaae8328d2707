using System.Collections.Concurrent;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Security;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// Another authenticator in place of the password file (what an HTTP or database authenticator would do), and the
/// broker's own <c>$SYS/</c> topics closed to clients' publishes.
/// </summary>
public sealed class CustomAuthenticatorSpecs
{
    [Theory]
    [InlineData(ClientVersion.V311, (byte)MqttConnectReturnCode.BadUserNameOrPassword)]
    [InlineData(ClientVersion.V500, (byte)MqttReasonCode.BadUserNameOrPassword)]
    public async Task An_authenticator_passed_to_the_broker_decides_every_CONNECT(ClientVersion version, byte refused)
    {
        var directory = new DirectoryAuthenticator(("svc", "from-directory"));
        await using var broker = await BrokerHarness.StartAsync(
            o => o with { Auth = o.Auth with { AllowAnonymous = false } }, directory);

        var (good, goodAck) = await Credentials.ConnectAsync(broker.Port, version, "custom-1", "svc", "from-directory");
        await using (good)
        {
            Assert.Equal(0, goodAck.ReasonCode);
        }

        var (bad, badAck) = await Credentials.ConnectAsync(broker.Port, version, "custom-2", "svc", "guess");
        await using (bad)
        {
            Assert.Equal(refused, badAck.ReasonCode);
        }

        // It saw both attempts, with what the client presented.
        Assert.Equal(["custom-1", "custom-2"], directory.Asked.OrderBy(id => id, StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_client_publish_to_SYS_is_refused_and_never_delivered()
    {
        await using var broker = await BrokerHarness.StartAsync();
        var (watcher, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "sys-watcher");
        await using var w = watcher;
        await watcher.SubscribeAsync(1, "$SYS/#", MqttQoS.AtLeastOnce);

        var (publisher, _) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, "sys-forger");
        await using var p = publisher;
        await publisher.SendAsync(new MqttPublishPacket
        {
            Topic = "$SYS/broker/uptime", Payload = Encoding.UTF8.GetBytes("forged"), QoS = MqttQoS.AtLeastOnce, PacketId = 1,
        });
        var ack = await publisher.ExpectAsync<MqttPubAckPacket>();
        Assert.Equal(MqttReasonCode.NotAuthorized, ack.ReasonCode);
        await watcher.AssertSilentAsync(TimeSpan.FromMilliseconds(500));
    }

    /// <summary>A stand-in for a user directory: a fixed table, and a record of who asked.</summary>
    private sealed class DirectoryAuthenticator((string User, string Password) entry) : IAuthenticator
    {
        public ConcurrentBag<string> Asked { get; } = new();

        public Task<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken)
        {
            Asked.Add(request.ClientId);
            var password = request.Password is { } p ? Encoding.UTF8.GetString(p.Span) : null;
            return Task.FromResult(request.Username == entry.User && password == entry.Password
                ? new AuthResult(AuthOutcome.Allowed, request.Username)
                : AuthResult.Bad);
        }
    }
}
