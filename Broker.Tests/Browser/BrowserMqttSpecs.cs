using System.Security.Cryptography.X509Certificates;
using Broker.Configuration;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using Broker.Tests.Security;
using Broker.Tests.Transport;
using MQTTnet.Formatter;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Browser;

/// <summary>
/// A real browser (headless Chromium) loads a page that uses MQTT.js's browser bundle, served locally, connects to the
/// broker over ws:// (and over wss://), subscribes, publishes (an MQTTnet TCP client receives it) and receives a QoS 1
/// message sent by mosquitto_pub over TCP (over TLS for the wss case). The page's origin is in
/// Mqtt:WebSocket:AllowedOrigins; it runs with no console error. Over wss the browser trusts the test's server
/// certificate by its public key alone (Chromium's --ignore-certificate-errors-spki-list); a browser not told that key
/// refuses the connection.
/// </summary>
public sealed class BrowserMqttSpecs
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_page_using_MQTT_js_in_Chromium_subscribes_publishes_and_receives_from_mosquitto_pub()
    {
        await using var files = await ServePageAsync();
        await using var broker = await BrokerHarness.StartAsync(o => o with
        {
            Mqtt = o.Mqtt with { WebSocket = new WebSocketOptions { Port = 0, AllowedOrigins = [files.Origin] } },
        });
        var tcpSubscriber = await broker.ConnectAsync(MqttProtocolVersion.V311, "browser-spec-tcp");
        var fromBrowser = new MessageCollector(tcpSubscriber);
        await E2E.SubscribeAsync(tcpSubscriber, "browser/out");

        await using var chromium = await HeadlessChromium.LaunchAsync();
        var errors = new List<string>();
        var page = await chromium.NewPageAsync(errors);
        var ws = Uri.EscapeDataString($"ws://127.0.0.1:{broker.Server.WebSocketEndPoint!.Port}/mqtt");
        await page.GoToAsync($"{files.Origin}/?ws={ws}&in=browser%2Fin&out=browser%2Fout");
        await HeadlessChromium.WaitForAsync(page, "window.state === 'subscribed'");

        Assert.Equal("hello from the browser", E2E.Text((await fromBrowser.WaitForAsync(1))[0]));
        await ExternalProcess.RunAsync(MosquittoPub,
            ["-h", "127.0.0.1", "-p", broker.Port.ToString(), "-t", "browser/in", "-m", "from mosquitto_pub", "-q", "1"], ProcessTimeout);
        await HeadlessChromium.WaitForAsync(page, "window.received.length >= 1");
        Assert.Equal(["browser/in|1|from mosquitto_pub"], await page.EvaluateExpressionAsync<string[]>("window.received"));
        Assert.Equal("subscribed", await page.EvaluateExpressionAsync<string>("document.getElementById('state').textContent"));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task A_page_over_wss_trusting_the_test_certificate_receives_from_mosquitto_pub_over_TLS()
    {
        await using var files = await ServePageAsync();
        var certificates = Path.Combine(Path.GetTempPath(), "broker-browser-wss-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(certificates);
        try
        {
            var pki = TestCertificates.Create(certificates);
            await using var broker = await BrokerHarness.StartAsync(o => o with
            {
                Mqtt = o.Mqtt with
                {
                    Tls = new TlsOptions { Port = 0, Certificate = pki.ServerCertFile, Key = pki.ServerKeyFile },
                    WebSocket = new WebSocketOptions { TlsPort = 0, AllowedOrigins = [files.Origin] },
                },
            });
            var tcpSubscriber = await broker.ConnectAsync(MqttProtocolVersion.V311, "browser-wss-spec-tcp");
            var fromBrowser = new MessageCollector(tcpSubscriber);
            await E2E.SubscribeAsync(tcpSubscriber, "browser-wss/out");
            var wss = Uri.EscapeDataString($"wss://127.0.0.1:{broker.Server.WebSocketTlsEndPoint!.Port}/mqtt");
            var url = $"{files.Origin}/?ws={wss}&in=browser-wss%2Fin&out=browser-wss%2Fout";
            using var serverCertificate = X509Certificate2.CreateFromPem(File.ReadAllText(pki.ServerCertFile));

            // Without the server's key in its list, Chromium refuses the test certificate: no MQTT connection.
            await using (var untrusting = await HeadlessChromium.LaunchAsync())
            {
                var refusals = new List<string>();
                var refused = await untrusting.NewPageAsync(refusals);
                await refused.GoToAsync(url);
                var deadline = DateTime.UtcNow.AddSeconds(15);
                while (!Snapshot(refusals).Any(e => e.Contains("ERR_CERT_AUTHORITY_INVALID", StringComparison.Ordinal)))
                {
                    Assert.True(DateTime.UtcNow < deadline, "no certificate error: " + string.Join("\n", Snapshot(refusals)));
                    await Task.Delay(100);
                }

                Assert.False(await refused.EvaluateExpressionAsync<bool>("window.connected"));
            }

            await using var chromium = await HeadlessChromium.LaunchAsync(serverCertificate);
            var errors = new List<string>();
            var page = await chromium.NewPageAsync(errors);
            await page.GoToAsync(url);
            await HeadlessChromium.WaitForAsync(page, "window.state === 'subscribed'");

            Assert.Equal("hello from the browser", E2E.Text((await fromBrowser.WaitForAsync(1))[0]));
            await ExternalProcess.RunAsync(MosquittoPub,
                ["-h", "127.0.0.1", "-p", broker.Server.MqttTlsEndPoint!.Port.ToString(), "--cafile", pki.CaFile,
                    "-t", "browser-wss/in", "-m", "from mosquitto_pub over TLS", "-q", "1"], ProcessTimeout);
            await HeadlessChromium.WaitForAsync(page, "window.received.length >= 1");
            Assert.Equal(["browser-wss/in|1|from mosquitto_pub over TLS"], await page.EvaluateExpressionAsync<string[]>("window.received"));
            Assert.True(await page.EvaluateExpressionAsync<bool>("location.protocol === 'http:' && window.connected && !window.closed"));
            Assert.True(errors.Count == 0, string.Join("\n", errors));
        }
        finally
        {
            Directory.Delete(certificates, recursive: true);
        }
    }

    private static string[] Snapshot(List<string> errors)
    {
        lock (errors)
        {
            return errors.ToArray();
        }
    }

    /// <summary>The MQTT.js page and MQTT.js's browser bundle, served on a free port.</summary>
    internal static Task<StaticFiles> ServePageAsync() =>
        StaticFiles.StartAsync(FreePort(), new Dictionary<string, (string, string)>
        {
            ["/"] = (JsEnvironment.Script("browser-page.html"), "text/html; charset=utf-8"),
            ["/mqtt.min.js"] = (JsEnvironment.MqttBrowserBundle, "text/javascript"),
        });
}
