using Broker.Tests.Interop;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Transport;

/// <summary>
/// MQTT.js (npm "mqtt", run by Node) over ws:// and wss:// as MQTT 3.1.1 and 5.0, and the Mosquitto command-line
/// clients over TCP meeting an MQTT.js WebSocket client: a QoS 1 message from mosquitto_pub reaches the WebSocket
/// subscriber, whose QoS 1 answer reaches mosquitto_sub.
/// </summary>
public sealed class MqttJsSpecs(WebSocketFixture fixture) : IClassFixture<WebSocketFixture>
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(4, false)]
    [InlineData(5, false)]
    [InlineData(4, true)]
    [InlineData(5, true)]
    public async Task MQTT_js_should_subscribe_publish_and_receive_its_own_message(int protocolVersion, bool tls)
    {
        var topic = $"mqttjs/{(tls ? "wss" : "ws")}/v{protocolVersion}";
        string[] args = tls
            ? [JsEnvironment.Script("mqttjs-client.js"), "roundtrip", fixture.WssUri.ToString(), protocolVersion.ToString(), topic, fixture.Certificates.CaFile]
            : [JsEnvironment.Script("mqttjs-client.js"), "roundtrip", fixture.WsUri.ToString(), protocolVersion.ToString(), topic];
        using var node = ExternalProcess.Start(JsEnvironment.Node, args);

        await node.WaitForSuccessAsync(ProcessTimeout);

        Assert.Contains($"CONNECTED|{(tls ? "wss" : "ws")}|session present false", node.StdoutLines);
        Assert.Contains("SUBSCRIBED|1", node.StdoutLines);
        Assert.Contains($"MSG|{topic}|1|hello from mqtt.js", node.StdoutLines);
    }

    [Theory]
    [InlineData(4, "mqttv311")]
    [InlineData(5, "mqttv5")]
    public async Task A_QoS_1_message_from_mosquitto_pub_over_TCP_reaches_a_WebSocket_subscriber_and_back(int protocolVersion, string mosquittoVersion)
    {
        var (toWs, toTcp) = ($"bridge/v{protocolVersion}/to-ws", $"bridge/v{protocolVersion}/to-tcp");
        var port = fixture.Broker.Port.ToString();
        using var sub = ExternalProcess.Start(StdBuf,
        [
            "-oL", MosquittoSub, "-h", "127.0.0.1", "-p", port, "-V", mosquittoVersion, "-t", toTcp, "-q", "1", "-C", "1",
            "-W", "15", "-d", "-F", "MSG|%t|%q|%p",
        ]);
        await sub.WaitForLineAsync(l => l.Contains("received SUBACK", StringComparison.Ordinal), ProcessTimeout);
        using var node = ExternalProcess.Start(JsEnvironment.Node,
            [JsEnvironment.Script("mqttjs-client.js"), "echo", fixture.WsUri.ToString(), protocolVersion.ToString(), toWs, toTcp]);
        await node.WaitForLineAsync(l => l.StartsWith("SUBSCRIBED|", StringComparison.Ordinal), ProcessTimeout);

        await ExternalProcess.RunAsync(MosquittoPub,
            ["-h", "127.0.0.1", "-p", port, "-V", mosquittoVersion, "-t", toWs, "-m", "ping over tcp", "-q", "1"], ProcessTimeout);

        await node.WaitForSuccessAsync(ProcessTimeout);
        Assert.Contains($"MSG|{toWs}|1|ping over tcp", node.StdoutLines);
        Assert.Contains("ECHOED", node.StdoutLines);
        await sub.WaitForSuccessAsync(ProcessTimeout);
        Assert.Contains($"MSG|{toTcp}|1|echo:ping over tcp", sub.StdoutLines);
    }
}
