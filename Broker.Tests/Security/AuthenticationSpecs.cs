using System.Diagnostics;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Tests.EndToEnd;
using MQTTnet;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>Auth:PasswordFile and Auth:AllowAnonymous over real connections: CONNACK codes for both protocol versions.</summary>
public sealed class AuthenticationSpecs
{
    private static Func<BrokerOptions, BrokerOptions> WithPasswords(string file, bool? anonymous = false) =>
        o => o with { Auth = o.Auth with { PasswordFile = file, AllowAnonymous = anonymous, ReloadInterval = 1 } };

    [Theory]
    [InlineData(ClientVersion.V311, (byte)MqttConnectReturnCode.BadUserNameOrPassword)]
    [InlineData(ClientVersion.V500, (byte)MqttReasonCode.BadUserNameOrPassword)]
    public async Task A_wrong_password_is_refused_and_the_right_one_accepted(ClientVersion version, byte expected)
    {
        using var files = new SecurityTestFiles();
        await using var broker = await BrokerHarness.StartAsync(WithPasswords(files.WritePasswords(("alice", "s3cret"))));

        var (wrong, refused) = await Credentials.ConnectAsync(broker.Port, version, "c1", "alice", "guess");
        Assert.Equal(expected, refused.ReasonCode);
        await wrong.ExpectClosedAsync();

        var (unknown, refusedUnknown) = await Credentials.ConnectAsync(broker.Port, version, "c2", "mallory", "s3cret");
        Assert.Equal(expected, refusedUnknown.ReasonCode);
        await unknown.DisposeAsync();

        var (right, accepted) = await Credentials.ConnectAsync(broker.Port, version, "c3", "alice", "s3cret");
        Assert.Equal(0, accepted.ReasonCode);
        await right.DisposeAsync();
        Assert.Equal(2, broker.Server.Context.Metrics.AuthFailures);
    }

    [Theory]
    [InlineData(ClientVersion.V311, (byte)MqttConnectReturnCode.NotAuthorized)]
    [InlineData(ClientVersion.V500, (byte)MqttReasonCode.NotAuthorized)]
    public async Task Without_credentials_a_client_is_refused_when_anonymous_clients_are_not_allowed(ClientVersion version, byte expected)
    {
        using var files = new SecurityTestFiles();
        await using var broker = await BrokerHarness.StartAsync(WithPasswords(files.WritePasswords(("alice", "pw"))));
        Assert.False(broker.Server.Context.Security.AllowAnonymous);

        var (client, connAck) = await Credentials.ConnectAsync(broker.Port, version, "anon", null, null);
        Assert.Equal(expected, connAck.ReasonCode);
        await client.ExpectClosedAsync();
    }

    [Fact]
    public async Task Anonymous_clients_are_allowed_by_default_on_loopback_and_an_MQTTnet_client_logs_in_with_a_password()
    {
        using var files = new SecurityTestFiles();
        await using var broker = await BrokerHarness.StartAsync(WithPasswords(files.WritePasswords(("bob", "hunter2")), anonymous: null));
        Assert.True(broker.Server.Context.Security.AllowAnonymous);
        Assert.Contains("loopback", broker.Server.Context.Security.AnonymousReason, StringComparison.Ordinal);

        var anonymous = await broker.ConnectAsync(ClientVersion.V500, "anon-ok");
        Assert.True(anonymous.IsConnected);
        var bob = await broker.ConnectAsync(ClientVersion.V311, "bob-1", b => b.WithCredentials("bob", "hunter2"));
        Assert.True(bob.IsConnected);
        var wrong = broker.NewClient();
        var result = await wrong.ConnectAsync(broker.Options(ClientVersion.V500, "bob-2").WithCredentials("bob", "hunter3").Build());
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result.ResultCode);
        Assert.False(wrong.IsConnected);
    }

    [Fact]
    public void Anonymous_default_is_off_when_a_listener_is_reachable_from_other_hosts()
    {
        Assert.True(new AuthOptions().ResolveAllowAnonymous(["127.0.0.1", "::1"]).Allowed);
        Assert.False(new AuthOptions().ResolveAllowAnonymous(["127.0.0.1", "0.0.0.0"]).Allowed);
        Assert.True(new AuthOptions { AllowAnonymous = true }.ResolveAllowAnonymous(["0.0.0.0"]).Allowed);
    }

    [Fact]
    public async Task Repeated_failures_from_one_address_are_answered_ever_more_slowly()
    {
        using var files = new SecurityTestFiles();
        await using var broker = await BrokerHarness.StartAsync(WithPasswords(files.WritePasswords(("alice", "right"))));
        var times = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            var (client, connAck) = await Credentials.ConnectAsync(broker.Port, ClientVersion.V500, $"guess-{i}", "alice", $"wrong-{i}");
            times.Add(watch.Elapsed);
            Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, connAck.ReasonCode);
            await client.DisposeAsync();
        }

        // No absolute limits: each later attempt is held back more than the one before, and the fifth waits several
        // times as long as the first (whose only cost is the hash).
        Assert.True(times[4] > times[2] && times[2] > times[0], string.Join(", ", times.Select(t => $"{t.TotalMilliseconds:F0} ms")));
        Assert.True(times[4] > times[0] * 3, string.Join(", ", times.Select(t => $"{t.TotalMilliseconds:F0} ms")));
        Assert.Equal(5, broker.Server.Context.Metrics.AuthFailures);
    }
}
