using Broker.Configuration;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using Broker.Tests.Transport;
using MQTTnet.Formatter;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Browser;

/// <summary>
/// A real browser (headless Chromium) loads a page that uses MQTT.js's browser bundle, served locally, connects to the
/// broker over ws://, subscribes, publishes (an MQTTnet TCP client receives it) and receives a QoS 1 message sent by
/// mosquitto_pub over TCP. The page's origin is in Mqtt:WebSocket:AllowedOrigins; it runs with no console error.
/// </summary>
public sealed class BrowserMqttSpecs
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_page_using_MQTT_js_in_Chromium_subscribes_publishes_and_receives_from_mosquitto_pub()
    {
        var pagePort = FreePort();
        await using var files = await StaticFiles.StartAsync(pagePort, new Dictionary<string, (string, string)>
        {
            ["/"] = (JsEnvironment.Script("browser-page.html"), "text/html; charset=utf-8"),
            ["/mqtt.min.js"] = (JsEnvironment.MqttBrowserBundle, "text/javascript"),
        });
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
}
