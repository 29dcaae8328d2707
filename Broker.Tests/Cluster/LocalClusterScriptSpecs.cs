using System.Security.Cryptography.X509Certificates;
using Broker.Tests.Interop;
using Broker.Tests.LoadTests;
using Xunit.Abstractions;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Cluster;

/// <summary>
/// The README's one-command local cluster, as a user runs it: <c>cluster-config/local-cluster.sh up</c> starts a
/// throwaway PostgreSQL and three Broker.Node processes, waits until all three are Up and prints the endpoints and
/// PIDs; Mosquitto's clients then use the cluster across nodes, MQTT.js over ws and wss from Node and from a page in
/// headless Chromium (ws to node 1, wss to node 2, answering a message sent to node 3), and the dashboard in the same
/// browser; <c>down</c> stops exactly those processes. It runs on
/// free ports and its own state folder (the script's LOCAL_CLUSTER_* variables), so it never takes the fixed ports
/// of a cluster a developer has running. (It broke unnoticed once: Akka's numbered log templates came out garbled
/// through the log bridge, and "up" waited forever for "Leader is moving node [...] to [Up]".)
/// <para>
/// It runs alone, after the parallel specs: in CI, started beside other multi-process specs on 2 cores, its third
/// node once took the whole 120 s "members Up" budget to join.
/// </para>
/// </summary>
[Collection(LocalClusterScriptCollection.Name)]
public sealed class LocalClusterScriptSpecs(ITestOutputHelper output)
{

    private static readonly TimeSpan ScriptLimit = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task Up_starts_three_nodes_that_route_across_each_other_and_down_stops_them()
    {
        var ports = FreePorts(19); // all different (one node's MQTT port was once another's metrics port)
        var mqtt = ports[0..3];
        var ws = ports[3..6];
        var metrics = ports[6..9];
        var wss = ports[9..12];
        var runDir = Path.Combine(Path.GetTempPath(), "local-cluster-" + Guid.NewGuid().ToString("N")[..8]);
        var environment = new Dictionary<string, string?>
        {
            ["LOCAL_CLUSTER_MQTT_PORTS"] = string.Join(',', mqtt),
            ["LOCAL_CLUSTER_WS_PORTS"] = string.Join(',', ws),
            ["LOCAL_CLUSTER_METRICS_PORTS"] = string.Join(',', metrics),
            ["LOCAL_CLUSTER_WSS_PORTS"] = string.Join(',', wss),
            ["LOCAL_CLUSTER_TLS_PORTS"] = string.Join(',', ports[12..15]),
            ["LOCAL_CLUSTER_REMOTING_PORTS"] = string.Join(',', ports[15..18]),
            ["LOCAL_CLUSTER_PG_PORT"] = ports[18].ToString(),
            ["LOCAL_CLUSTER_RUN_DIR"] = runDir,
        };
        var script = Broker.LoadTests.Scenarios.LocalCluster.Script;
        var pids = new List<int>();
        try
        {
            using (var up = ExternalProcess.Start("bash", [script, "up"], environment))
            {
                await up.WaitForSuccessAsync(ScriptLimit);
                output.WriteLine(up.Stdout);
                // It prints each node's endpoint and PID.
                for (var i = 0; i < 3; i++)
                {
                    var line = Assert.Single(up.StdoutLines, l => l.Contains($"mqtt://127.0.0.1:{mqtt[i]}  ws://127.0.0.1:{ws[i]}/mqtt  wss://127.0.0.1:{wss[i]}/mqtt", StringComparison.Ordinal));
                    pids.Add(int.Parse(line.Split(" pid ")[1].Split(' ')[0]));
                }
            }

            Assert.All(pids, pid => Assert.True(LiveProcesses.IsRunning(pid), $"node pid {pid} is not running after up"));

            // A retained message set on node 1 is there for a subscriber on node 3.
            var topic = $"local-cluster/{Guid.NewGuid():N}";
            await ExternalProcess.RunAsync(MosquittoPub,
                ["-h", "127.0.0.1", "-p", mqtt[0].ToString(), "-q", "1", "-r", "-t", $"{topic}/retained", "-m", "kept"], TimeSpan.FromSeconds(30));
            using (var retained = ExternalProcess.Start(MosquittoSub,
                ["-h", "127.0.0.1", "-p", mqtt[2].ToString(), "-q", "1", "-t", $"{topic}/retained", "-C", "1", "-W", "30", "-v"]))
            {
                await retained.WaitForSuccessAsync(TimeSpan.FromSeconds(40));
                Assert.Contains($"{topic}/retained kept", retained.StdoutLines);
            }

            // A live message published on node 1 reaches a subscriber on node 2 (published until the subscription,
            // replicated to every node, is known on node 1: bounded by the subscriber's own 60 s limit).
            using var live = ExternalProcess.Start(MosquittoSub,
                ["-h", "127.0.0.1", "-p", mqtt[1].ToString(), "-q", "1", "-t", $"{topic}/live", "-C", "1", "-W", "60", "-v"]);
            while (!live.HasExited)
            {
                await ExternalProcess.RunAsync(MosquittoPub,
                    ["-h", "127.0.0.1", "-p", mqtt[0].ToString(), "-q", "1", "-t", $"{topic}/live", "-m", "across"], TimeSpan.FromSeconds(30));
                await Task.Delay(200);
            }

            await live.WaitForSuccessAsync(TimeSpan.FromSeconds(5));
            Assert.Contains($"{topic}/live across", live.StdoutLines);

            // MQTT over WebSocket across the cluster: MQTT.js on node 2's ws:// listener gets a QoS 1 message that
            // mosquitto_pub sends to node 1 over TCP, and its answer reaches mosquitto_sub on node 3.
            using var answers = ExternalProcess.Start(MosquittoSub,
                ["-h", "127.0.0.1", "-p", mqtt[2].ToString(), "-q", "1", "-t", $"{topic}/ws-out", "-C", "1", "-W", "60", "-v"]);
            using var mqttJs = ExternalProcess.Start(Transport.JsEnvironment.Node,
                [Transport.JsEnvironment.Script("mqttjs-client.js"), "echo", $"ws://127.0.0.1:{ws[1]}/mqtt", "5", $"{topic}/ws-in", $"{topic}/ws-out"],
                new Dictionary<string, string?> { ["MQTTJS_TIMEOUT_MS"] = "60000" });
            await mqttJs.WaitForLineAsync(l => l.StartsWith("SUBSCRIBED|", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            while (!mqttJs.HasExited)
            {
                await ExternalProcess.RunAsync(MosquittoPub,
                    ["-h", "127.0.0.1", "-p", mqtt[0].ToString(), "-q", "1", "-t", $"{topic}/ws-in", "-m", "to websocket"], TimeSpan.FromSeconds(30));
                await Task.Delay(200);
            }

            await mqttJs.WaitForSuccessAsync(TimeSpan.FromSeconds(5));
            Assert.Contains($"MSG|{topic}/ws-in|1|to websocket", mqttJs.StdoutLines);
            await answers.WaitForSuccessAsync(TimeSpan.FromSeconds(60));
            Assert.Contains($"{topic}/ws-out echo:to websocket", answers.StdoutLines);

            // MQTT.js over wss:// to node 3, trusting the certificate "up" made.
            using (var secure = ExternalProcess.Start(Transport.JsEnvironment.Node,
                [Transport.JsEnvironment.Script("mqttjs-client.js"), "roundtrip", $"wss://127.0.0.1:{wss[2]}/mqtt", "5", $"{topic}/wss",
                    Path.Combine(runDir, "tls", "server.pem")]))
            {
                await secure.WaitForSuccessAsync(TimeSpan.FromSeconds(30));
                Assert.Contains($"MSG|{topic}/wss|1|hello from mqtt.js", secure.StdoutLines);
            }

            // Headless Chromium, trusting the certificate "up" made by its key (the wss listeners use it).
            using var certificate = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(runDir, "tls", "server.pem")));
            await using var chromium = await Browser.HeadlessChromium.LaunchAsync(certificate);
            var errors = new List<string>();
            var browserStep = System.Diagnostics.Stopwatch.StartNew();
            await BrowserPagesAnswerAcrossTheClusterAsync(chromium, errors, topic, mqtt[2], $"ws://127.0.0.1:{ws[0]}/mqtt", $"wss://127.0.0.1:{wss[1]}/mqtt");
            output.WriteLine($"MQTT.js pages in Chromium over ws (node 1) and wss (node 2), answered via node 3: {browserStep.Elapsed.TotalSeconds:F1} s");

            // The dashboard of node 2, signed in with the token "up" made: three members Up, three nodes, and a client
            // connected to node 3 that it finds and disconnects.
            var token = (await File.ReadAllTextAsync(Path.Combine(runDir, "management-token"))).Trim();
            var device = await ConnectDeviceAsync(mqtt[2], $"dash-{Guid.NewGuid():N}"[..16]);
            var page = await chromium.NewPageAsync(errors);
            await page.GoToAsync($"http://127.0.0.1:{metrics[1]}/dashboard");
            await page.TypeAsync("#token", token);
            await page.ClickAsync("#login button[type=submit]");
            await Browser.HeadlessChromium.WaitForAsync(page, "document.getElementById('member-count').textContent === '(3 members)'", TimeSpan.FromSeconds(30));
            await Browser.HeadlessChromium.WaitForAsync(page, "document.querySelectorAll('#nodes tbody tr').length === 3");
            await page.TypeAsync("#search", device.Id);
            await Browser.HeadlessChromium.WaitForAsync(page, "document.querySelectorAll('#clients tbody tr').length === 1");
            await page.ClickAsync("#clients tbody tr");
            await Browser.HeadlessChromium.WaitForAsync(page, "document.querySelector('#client button.danger') && !document.querySelector('#client button.danger').disabled");
            await page.ClickAsync("#client button.danger");
            Assert.Equal(MQTTnet.MqttClientDisconnectReason.AdministrativeAction, (await device.Kicked.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
            Assert.True(errors.Count == 0, string.Join("\n", errors));
            device.Client.Dispose();
        }
        finally
        {
            using var down = ExternalProcess.Start("bash", [script, "down"], environment);
            await down.WaitForSuccessAsync(ScriptLimit);
            output.WriteLine(down.Stdout);
        }

        Assert.All(pids, pid => Assert.False(LiveProcesses.IsRunning(pid), $"node pid {pid} still runs after down"));
        Assert.False(Directory.Exists(runDir), "down left the state folder behind");
    }

    /// <summary>
    /// MQTT.js's browser page in Chromium, once over ws:// to node 1 and once over wss:// to node 2: mosquitto_pub sends
    /// a QoS 1 message to node 3, both pages receive it and answer, and mosquitto_sub on node 3 receives both answers.
    /// </summary>
    private static async Task BrowserPagesAnswerAcrossTheClusterAsync(
        Browser.HeadlessChromium chromium, List<string> errors, string topic, int node3Mqtt, string node1Ws, string node2Wss)
    {
        await using var files = await Browser.BrowserMqttSpecs.ServePageAsync();
        using var answers = ExternalProcess.Start(StdBuf,
            ["-oL", MosquittoSub, "-h", "127.0.0.1", "-p", node3Mqtt.ToString(), "-q", "1", "-t", $"{topic}/browser/+/out", "-W", "90", "-v"]);
        var pages = new Dictionary<string, PuppeteerSharp.IPage>();
        foreach (var (label, url) in new[] { ("ws", node1Ws), ("wss", node2Wss) })
        {
            var page = await chromium.NewPageAsync(errors);
            await page.GoToAsync($"{files.Origin}/?ws={Uri.EscapeDataString(url)}&in={Uri.EscapeDataString(topic + "/browser/in")}" +
                                 $"&out={Uri.EscapeDataString($"{topic}/browser/{label}/out")}&echo=1");
            await Browser.HeadlessChromium.WaitForAsync(page, "window.state === 'subscribed'", TimeSpan.FromSeconds(30));
            pages[label] = page;
        }

        // Published until both answers are back: the pages' subscriptions (made on nodes 1 and 2) and mosquitto_sub's
        // (on node 3) reach the other nodes within moments; bounded by 60 s.
        var expected = pages.Keys.Select(label => $"{topic}/browser/{label}/out echo:from node 3").ToArray();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (expected.Except(answers.StdoutLines).Any())
        {
            Assert.True(DateTime.UtcNow < deadline && !answers.HasExited,
                $"answers from the browser pages: {answers.Stdout}\nerrors: {string.Join("\n", errors)}");
            await ExternalProcess.RunAsync(MosquittoPub,
                ["-h", "127.0.0.1", "-p", node3Mqtt.ToString(), "-q", "1", "-t", $"{topic}/browser/in", "-m", "from node 3"], TimeSpan.FromSeconds(30));
            await Task.Delay(300);
        }

        foreach (var page in pages.Values)
        {
            Assert.Contains($"{topic}/browser/in|1|from node 3", await page.EvaluateExpressionAsync<string[]>("window.received"));
        }
    }

    private static async Task<(string Id, MQTTnet.IMqttClient Client, Task<MQTTnet.MqttClientDisconnectedEventArgs> Kicked)> ConnectDeviceAsync(int port, string id)
    {
        var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
        var kicked = new TaskCompletionSource<MQTTnet.MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            kicked.TrySetResult(e);
            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MQTTnet.MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).WithClientId(id).WithTimeout(TimeSpan.FromSeconds(10)).Build());
        return (id, client, kicked.Task);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LocalClusterScriptCollection
{
    public const string Name = "local-cluster.sh, alone";
}
