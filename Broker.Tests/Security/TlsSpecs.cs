using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Broker.Configuration;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using MQTTnet;
using MQTTnet.Protocol;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Security;

/// <summary>
/// The TLS listener (Mqtt:Tls) with certificates made at run time: handshake and traffic with MQTTnet (PEM and PFX
/// server certificates), client-certificate login with the subject's CN as username (MQTTnet and mosquitto_pub),
/// and refusals of clients without an acceptable certificate.
/// </summary>
public sealed class TlsSpecs : IDisposable
{
    private readonly SecurityTestFiles _files = new();
    private readonly TestCertificates _pki;

    public TlsSpecs()
    {
        _pki = TestCertificates.Create(_files.Directory);
    }

    public void Dispose() => _files.Dispose();

    private Task<BrokerHarness> StartAsync(Func<TlsOptions, TlsOptions>? tls = null, Func<AuthOptions, AuthOptions>? auth = null) =>
        BrokerHarness.StartAsync(o => o with
        {
            Mqtt = o.Mqtt with
            {
                Tls = (tls ?? (t => t))(new TlsOptions { Port = 0, Certificate = _pki.ServerCertFile, Key = _pki.ServerKeyFile }),
            },
            Auth = (auth ?? (a => a))(o.Auth),
        });

    /// <summary>Trusts exactly the test CA (not the machine's roots) and checks the host name.</summary>
    private MqttClientOptionsBuilder TlsClient(BrokerHarness broker, ClientVersion version, string clientId, X509Certificate2? clientCertificate = null) =>
        new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", broker.Server.MqttTlsEndPoint!.Port)
            .WithProtocolVersion(version)
            .WithClientId(clientId)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithTlsOptions(o =>
            {
                o.UseTls().WithTargetHost("localhost").WithCertificateValidationHandler(e =>
                {
                    if ((e.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || e.Certificate is null)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(_pki.Ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(X509CertificateLoader.LoadCertificate(e.Certificate.GetRawCertData()));
                });
                if (clientCertificate is not null)
                {
                    o.WithClientCertificates([clientCertificate]);
                }
            });

    private static async Task<IMqttClient> ConnectAsync(BrokerHarness broker, MqttClientOptionsBuilder options)
    {
        var client = broker.NewClient();
        var result = await client.ConnectAsync(options.Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        return client;
    }

    [Theory]
    [InlineData(ClientVersion.V311)]
    [InlineData(ClientVersion.V500)]
    public async Task A_client_completes_the_TLS_handshake_and_exchanges_messages_with_a_plain_TCP_client(ClientVersion version)
    {
        await using var broker = await StartAsync();
        var secure = await ConnectAsync(broker, TlsClient(broker, version, "tls-sub"));
        var received = new MessageCollector(secure);
        await secure.SubscribeAsync("tls/#", MqttQualityOfServiceLevel.AtLeastOnce);

        var plain = await broker.ConnectAsync(version, "plain-pub");
        await plain.PublishAsync(E2E.Message("tls/a", "over tls", MqttQualityOfServiceLevel.AtLeastOnce));
        Assert.Equal("over tls", E2E.Text((await received.WaitForAsync(1))[0]));
        await secure.PublishAsync(E2E.Message("tls/b", "from tls", MqttQualityOfServiceLevel.AtLeastOnce));
        Assert.Equal("from tls", E2E.Text((await received.WaitForAsync(2))[1]));
    }

    [Fact]
    public async Task A_PFX_server_certificate_with_a_password_serves_TLS_and_a_plain_client_on_the_TLS_port_gets_nothing()
    {
        await using var broker = await StartAsync(t => t with { Certificate = _pki.ServerPfxFile, Key = "", Password = TestCertificates.PfxPassword });
        var secure = await ConnectAsync(broker, TlsClient(broker, ClientVersion.V500, "pfx"));
        Assert.True(secure.IsConnected);

        var (raw, _) = (await RawMqttClient.OpenAsync(broker.Server.MqttTlsEndPoint!.Port, ClientVersion.V500), 0);
        await raw.SendAsync(new Broker.Protocol.Packets.MqttConnectPacket { ProtocolVersion = Broker.Protocol.MqttProtocolVersion.V500, ClientId = "plain" });
        Assert.DoesNotContain(await raw.ExpectClosedAsync(), p => p is Broker.Protocol.Packets.MqttConnAckPacket);
        await raw.DisposeAsync();
    }

    [Fact]
    public async Task A_client_certificate_logs_in_as_its_subject_CN_and_the_ACL_applies_to_that_name()
    {
        File.WriteAllText(_files.AclFile, "user device-7\ntopic readwrite devices/device-7/#\n");
        await using var broker = await StartAsync(
            t => t with { RequireClientCertificate = true, ClientCaFile = _pki.CaFile },
            a => a with { UseCertificateSubjectAsUsername = true, AllowAnonymous = false, AclFile = _files.AclFile });
        var device = await ConnectAsync(broker, TlsClient(broker, ClientVersion.V500, "device-7-conn", _pki.IssueClient("device-7")));

        var own = await device.PublishAsync(E2E.Message("devices/device-7/t", "ok", MqttQualityOfServiceLevel.AtLeastOnce));
        Assert.Equal(MqttClientPublishReasonCode.Success, own.ReasonCode);
        var other = await device.PublishAsync(E2E.Message("devices/device-8/t", "no", MqttQualityOfServiceLevel.AtLeastOnce));
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, other.ReasonCode);
    }

    [Fact]
    public async Task Without_a_certificate_from_the_client_CA_the_handshake_fails_when_one_is_required()
    {
        await using var broker = await StartAsync(t => t with { RequireClientCertificate = true, ClientCaFile = _pki.CaFile });
        var none = broker.NewClient();
        await Assert.ThrowsAnyAsync<Exception>(() => none.ConnectAsync(TlsClient(broker, ClientVersion.V500, "no-cert").Build()));

        using var otherFiles = new SecurityTestFiles();
        var stranger = TestCertificates.Create(otherFiles.Directory, "Some Other CA").IssueClient("stranger");
        var foreign = broker.NewClient();
        await Assert.ThrowsAnyAsync<Exception>(() => foreign.ConnectAsync(TlsClient(broker, ClientVersion.V500, "foreign", stranger).Build()));
        Assert.False(foreign.IsConnected);

        var good = await ConnectAsync(broker, TlsClient(broker, ClientVersion.V500, "good", _pki.IssueClient("good")));
        Assert.True(good.IsConnected);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Mosquitto_pub_logs_in_with_cafile_cert_and_key(string version)
    {
        File.WriteAllText(_files.AclFile, "user sensor-1\ntopic write sensors/sensor-1/#\nuser reader\ntopic read #\n");
        File.WriteAllText(_files.PasswordFile, SecurityTestFiles.PasswordLines([("reader", "rp")]));
        await using var broker = await StartAsync(
            t => t with { RequireClientCertificate = true, ClientCaFile = _pki.CaFile },
            a => a with { UseCertificateSubjectAsUsername = true, AllowAnonymous = false, AclFile = _files.AclFile, PasswordFile = _files.PasswordFile });
        _pki.IssueClient("sensor-1");
        var reader = await broker.ConnectAsync(ClientVersion.V500, "reader", b => b.WithCredentials("reader", "rp"));
        var received = new MessageCollector(reader);
        await reader.SubscribeAsync("sensors/#", MqttQualityOfServiceLevel.AtLeastOnce);

        await ExternalProcess.RunAsync(InteropEnvironment.MosquittoPub,
        [
            "-h", "127.0.0.1", "-p", broker.Server.MqttTlsEndPoint!.Port.ToString(), "-V", version, "-i", "sensor-1-" + version,
            "--cafile", _pki.CaFile, "--cert", Path.Combine(_pki.Directory, "sensor-1.pem"), "--key", Path.Combine(_pki.Directory, "sensor-1.key"),
            "-t", "sensors/sensor-1/temp", "-m", "21.5", "-q", "1",
        ], TimeSpan.FromSeconds(20));
        var message = (await received.WaitForAsync(1))[0];
        Assert.Equal("sensors/sensor-1/temp", message.Topic);
        Assert.Equal("21.5", E2E.Text(message));
    }
}
