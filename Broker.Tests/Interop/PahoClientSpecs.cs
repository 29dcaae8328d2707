using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Interop;

/// <summary>
/// Eclipse Paho for Python (Debian python3-paho-mqtt 1.6, run with /usr/bin/python3) against the broker, once per
/// protocol version: a client that subscribes, publishes at QoS 1 and 2 and receives its own messages; and a
/// persistent session that gets, on reconnect, the QoS 1 message MQTTnet published while it was away.
/// </summary>
public sealed class PahoClientSpecs : IClassFixture<InteropBrokerFixture>, IDisposable
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(30);
    private readonly BrokerHarness _broker;
    private readonly string _scriptDir = Directory.CreateTempSubdirectory("paho-specs-").FullName;

    public PahoClientSpecs(InteropBrokerFixture fixture)
    {
        _broker = fixture.Broker;
    }

    /// <summary>
    /// Paho's callbacks take a trailing properties argument only for MQTT 5; the defaults let one function serve both.
    /// Exit codes: 3 no CONNACK, 4 refused, 5 no SUBACK, 6 publish not completed, 7 messages missing.
    /// </summary>
    private const string Common = """
        import sys, threading
        import paho.mqtt.client as mqtt
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes

        host, port, version, client_id, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
        v5 = version == "5"
        connected, subscribed, done = threading.Event(), threading.Event(), threading.Event()
        state = {"rc": None, "session_present": None}
        received = []

        def on_connect(client, userdata, flags, rc, properties=None):
            state["rc"] = int(rc.value if hasattr(rc, "value") else rc)
            state["session_present"] = int(flags.get("session present", 0))
            connected.set()

        def on_subscribe(client, userdata, mid, granted, properties=None):
            subscribed.set()

        def fail(code, text):
            print(text, file=sys.stderr, flush=True)
            sys.exit(code)

        def wait_connected(client):
            if not connected.wait(10):
                fail(3, "no CONNACK")
            if state["rc"] != 0:
                fail(4, "connection refused: %s" % state["rc"])

        """;

    private const string PublishScript = Common + """
        def on_message(client, userdata, msg):
            received.append(msg)
            if len(received) >= 2:
                done.set()

        client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        client.connect(host, port, keepalive=30)
        client.loop_start()
        wait_connected(client)
        client.subscribe(topic + "/#", qos=2)
        if not subscribed.wait(10):
            fail(5, "no SUBACK")
        infos = [client.publish(topic + "/q1", "paho-one", qos=1), client.publish(topic + "/q2", "paho-two", qos=2)]
        for info in infos:
            info.wait_for_publish(10)
            if not info.is_published():
                fail(6, "publish mid %d not acknowledged" % info.mid)
        if not done.wait(10):
            fail(7, "received only %d messages" % len(received))
        for m in sorted(received, key=lambda m: m.topic):
            print("%s|%d|%d|%s" % (m.topic, m.qos, m.retain, m.payload.decode()), flush=True)
        client.disconnect()
        client.loop_stop()
        """;

    /// <summary>argv[6] is "subscribe" (subscribe, then leave) or "receive" (come back and wait for one message).</summary>
    private const string PersistentScript = Common + """
        mode = sys.argv[6]

        def on_message(client, userdata, msg):
            received.append(msg)
            done.set()

        if v5:
            client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
            connect = lambda: client.connect(host, port, keepalive=30, clean_start=False, properties=props)
        else:
            client = mqtt.Client(client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311)
            connect = lambda: client.connect(host, port, keepalive=30)
        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        connect()
        client.loop_start()
        wait_connected(client)
        print("session_present=%d" % state["session_present"], flush=True)
        if mode == "subscribe":
            client.subscribe(topic, qos=1)
            if not subscribed.wait(10):
                fail(5, "no SUBACK")
            print("subscribed", flush=True)
        else:
            if not done.wait(10):
                fail(7, "the queued message did not arrive")
            for m in received:
                print("%s|%d|%s" % (m.topic, m.qos, m.payload.decode()), flush=True)
        client.disconnect()
        client.loop_stop()
        """;

    [Theory]
    [InlineData("3")]
    [InlineData("5")]
    public async Task Paho_should_receive_its_own_QoS1_and_QoS2_messages(string version)
    {
        var topic = $"paho/v{version}/own";

        var output = await RunPythonAsync(PublishScript, version, $"paho-own-v{version}", topic);

        Assert.Equal([$"{topic}/q1|1|0|paho-one", $"{topic}/q2|2|0|paho-two"], output);
    }

    [Theory]
    [InlineData("3", MqttProtocolVersion.V311)]
    [InlineData("5", MqttProtocolVersion.V500)]
    public async Task Paho_persistent_session_should_get_the_QoS1_message_sent_while_it_was_away(
        string version,
        MqttProtocolVersion publisherVersion)
    {
        var topic = $"paho/v{version}/persistent";
        var clientId = $"paho-persistent-v{version}";

        var first = await RunPythonAsync(PersistentScript, version, clientId, topic, "subscribe");
        Assert.Equal(["session_present=0", "subscribed"], first);

        var publisher = await _broker.ConnectAsync(publisherVersion, $"mqttnet-away-pub-v{version}");
        var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(topic).WithPayload("while-away").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.True(result.IsSuccess, result.ReasonString);

        var second = await RunPythonAsync(PersistentScript, version, clientId, topic, "receive");
        Assert.Equal(["session_present=1", $"{topic}|1|while-away"], second);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_scriptDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<IReadOnlyList<string>> RunPythonAsync(string script, string version, string clientId, string topic, params string[] extra)
    {
        var path = Path.Combine(_scriptDir, $"script-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(path, script);
        using var process = ExternalProcess.Start(Python,
            ["-u", path, "127.0.0.1", _broker.Port.ToString(), version, clientId, topic, .. extra]);
        await process.WaitForSuccessAsync(ProcessTimeout);
        return process.StdoutLines;
    }
}
