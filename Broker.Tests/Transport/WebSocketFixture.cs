using System.Net.WebSockets;
using Broker.Configuration;
using Broker.Tests.EndToEnd;
using Broker.Tests.Security;
using MQTTnet;
using MQTTnet.Formatter;

namespace Broker.Tests.Transport;

/// <summary>
/// One broker with the TCP, TLS, ws:// and wss:// listeners on free ports (a throwaway CA signs the server
/// certificate), an allowed-origins list, and a small message-size limit for the oversize specs.
/// </summary>
public sealed class WebSocketFixture : IAsyncLifetime
{
    public const string AllowedOrigin = "http://dashboard.test";
    public const int MaxMessageSize = 64 * 1024;

    private readonly string _certDir = Path.Combine(Path.GetTempPath(), "broker-ws-certs-" + Guid.NewGuid().ToString("N"));

    public BrokerHarness Broker { get; private set; } = null!;

    public TestCertificates Certificates { get; private set; } = null!;

    public Uri WsUri => new($"ws://127.0.0.1:{Broker.Server.WebSocketEndPoint!.Port}/mqtt");

    public Uri WssUri => new($"wss://127.0.0.1:{Broker.Server.WebSocketTlsEndPoint!.Port}/mqtt");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_certDir);
        Certificates = TestCertificates.Create(_certDir);
        Broker = await BrokerHarness.StartAsync(o => o with
        {
            Mqtt = o.Mqtt with
            {
                Tls = new TlsOptions { Port = 0, Certificate = Certificates.ServerCertFile, Key = Certificates.ServerKeyFile },
                WebSocket = new WebSocketOptions
                {
                    Port = 0, TlsPort = 0, AllowedOrigins = [AllowedOrigin], MaxMessageSize = MaxMessageSize,
                },
            },
        });
    }

    /// <summary>MQTTnet over ws:// (or wss:// trusting the test CA).</summary>
    public MqttClientOptionsBuilder Options(MqttProtocolVersion version, string clientId, bool tls = false) =>
        new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri((tls ? WssUri : WsUri).ToString()))
            .WithTlsOptions(t => t.UseTls(tls).WithCertificateValidationHandler(e => e.Certificate is not null
                && TestCertificates.ChainsTo(e.Certificate, Certificates.Ca)))
            .WithProtocolVersion(version)
            .WithClientId(clientId)
            .WithTimeout(TimeSpan.FromSeconds(10));

    public async Task<IMqttClient> ConnectAsync(MqttProtocolVersion version, string clientId, bool tls = false)
    {
        var client = Broker.NewClient();
        await client.ConnectAsync(Options(version, clientId, tls).WithCleanStart(true).Build());
        return client;
    }

    /// <summary>A raw WebSocket (System.Net.WebSockets) offering the mqtt subprotocol.</summary>
    public async Task<ClientWebSocket> OpenRawAsync(string? origin = null, string subProtocol = "mqtt")
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(subProtocol);
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(WsUri, timeout.Token);
        return socket;
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        try
        {
            Directory.Delete(_certDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
