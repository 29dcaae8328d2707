using System.Net;
using System.Text;
using System.Text.Json;
using Broker.Configuration;
using Broker.Protocol;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// Auth:Http against a real HTTP service that the test runs (HttpListener on 127.0.0.1): allow, deny, ignore (the
/// password file decides), no answer (fail closed by default, or on to the password file), and allows cached.
/// </summary>
public sealed class HttpAuthenticationSpecs : IDisposable
{
    private readonly SecurityTestFiles _files = new();

    [Theory]
    [InlineData(ClientVersion.V311, (byte)MqttConnectReturnCode.BadUserNameOrPassword)]
    [InlineData(ClientVersion.V500, (byte)MqttReasonCode.BadUserNameOrPassword)]
    public async Task The_service_allows_and_denies_and_sees_what_the_client_presented(ClientVersion version, byte denied)
    {
        using var service = new AuthService(q => q.GetProperty("password").GetString() == "right" ? "allow" : "deny");
        await using var broker = await StartAsync(service.Url);

        var (allowed, ok) = await RawMqttClient.ConnectAsync(broker.Port, version, "http-dev-1",
            c => c with { Username = "dev", Password = Encoding.UTF8.GetBytes("right") });
        await allowed.DisposeAsync();
        Assert.Equal(0, ok.ReasonCode);
        var asked = Assert.Single(service.Questions);
        Assert.Equal("http-dev-1", asked.GetProperty("clientId").GetString());
        Assert.Equal("dev", asked.GetProperty("username").GetString());
        Assert.Equal("127.0.0.1", asked.GetProperty("address").GetString());
        Assert.Equal("connect", asked.GetProperty("action").GetString()); // one service can answer CONNECT and ACL questions

        var (refused, no) = await RawMqttClient.ConnectAsync(broker.Port, version, "http-dev-2",
            c => c with { Username = "dev", Password = Encoding.UTF8.GetBytes("wrong") });
        await refused.DisposeAsync();
        Assert.Equal(denied, no.ReasonCode);
    }

    [Fact]
    public async Task Ignore_lets_the_password_file_decide()
    {
        using var service = new AuthService(_ => "ignore");
        var passwords = _files.WritePasswords(("bob", "s3cret"));
        await using var broker = await StartAsync(service.Url, o => o with { Auth = o.Auth with { PasswordFile = passwords } });

        Assert.Equal(0, await ConnectAsync(broker, "bob", "s3cret"));
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, await ConnectAsync(broker, "bob", "nope"));
        Assert.Equal(2, service.Questions.Count);
    }

    [Fact]
    public async Task No_answer_refuses_by_default_and_lets_the_password_file_decide_when_not_fail_closed()
    {
        var nobody = $"http://127.0.0.1:{InteropEnvironment.FreePort()}/auth";
        await using (var closed = await StartAsync(nobody))
        {
            Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, await ConnectAsync(closed, "carol", "pw"));
        }

        var passwords = _files.WritePasswords(("carol", "pw"));
        await using var open = await StartAsync(nobody, o => o with
        {
            Auth = o.Auth with { PasswordFile = passwords, Http = o.Auth.Http with { FailClosed = false } },
        });
        Assert.Equal(0, await ConnectAsync(open, "carol", "pw"));
        Assert.Equal((byte)MqttReasonCode.BadUserNameOrPassword, await ConnectAsync(open, "carol", "other"));
    }

    [Fact]
    public async Task An_allow_is_remembered_for_the_cache_time()
    {
        using var service = new AuthService(_ => "allow");
        await using var broker = await StartAsync(service.Url);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(0, await ConnectAsync(broker, "dave", "pw", clientId: "http-cache"));
        }

        Assert.Single(service.Questions);
    }

    public void Dispose() => _files.Dispose();

    private static Task<BrokerHarness> StartAsync(string url, Func<BrokerOptions, BrokerOptions>? more = null) =>
        BrokerHarness.StartAsync(o =>
        {
            o = o with { Auth = o.Auth with { Http = new HttpAuthOptions { Url = url, TimeoutSeconds = 2 } } };
            return more?.Invoke(o) ?? o;
        });

    private static async Task<byte> ConnectAsync(BrokerHarness broker, string user, string password, string? clientId = null)
    {
        var (client, connAck) = await RawMqttClient.ConnectAsync(broker.Port, ClientVersion.V500, clientId ?? "http-" + user + "-" + Guid.NewGuid().ToString("N")[..6],
            c => c with { Username = user, Password = Encoding.UTF8.GetBytes(password) });
        await client.DisposeAsync();
        return connAck.ReasonCode;
    }
}
