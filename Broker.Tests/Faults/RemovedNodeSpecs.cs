using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Broker.Tests.Cluster;
using Broker.Tests.EndToEnd;
using MQTTnet;
using MQTTnet.Formatter;
using Xunit.Abstractions;

namespace Broker.Tests.Faults;

/// <summary>
/// A node that the cluster removed (here: frozen with SIGSTOP past the failure detector's limit, so that the majority's
/// split-brain resolver downs it) cannot serve again with the same actor system. When it runs again it must close its
/// MQTT listener and its clients at once, answer "not ready", and end with exit code 3, so that its supervisor starts a
/// fresh process, which joins the cluster again. Real Broker.Node processes on 127.0.0.1 and a throwaway PostgreSQL.
/// </summary>
public sealed class RemovedNodeSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(8); // detection ~2.5 s + stable-after 3 s + margin

    [Fact]
    public async Task A_node_downed_while_paused_closes_its_clients_and_listener_turns_not_ready_and_exits_with_code_3()
    {
        await using var cluster = await ProcessCluster.StartWithOperationsAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ProcessCluster.ManagementToken);
        try
        {
            var client = new MqttClientFactory().CreateMqttClient();
            var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            client.DisconnectedAsync += _ =>
            {
                closed.TrySetResult();
                return Task.CompletedTask;
            };
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", cluster.MqttPorts[2])
                .WithProtocolVersion(MqttProtocolVersion.V500).WithClientId("on-node-3").WithTimeout(TimeSpan.FromSeconds(10)).Build());
            Assert.Equal(200, await ReadinessAsync(http, cluster.HttpPorts[2]));

            var node3 = cluster.Node(3);
            node3.Process.Pause();
            var resumed = false;
            try
            {
                // The majority notices, downs node 3 and removes it from its membership.
                await WaitUntilAsync(async () => await MemberCountAsync(http, cluster.HttpPorts[0]) == 2, TimeSpan.FromSeconds(30),
                    "node 1 still lists node 3 as a member");
                await Task.Delay(Pause);
                node3.Process.Resume();
                resumed = true;
            }
            finally
            {
                if (!resumed)
                {
                    node3.Process.Resume();
                }
            }

            // Readiness, sampled until the process is gone: once not ready, never ready again.
            var samples = new List<int>();
            var exit = cluster.WaitForExitAsync(3, TimeSpan.FromSeconds(60));
            while (!exit.IsCompleted)
            {
                samples.Add(await ReadinessAsync(http, cluster.HttpPorts[2]));
                await Task.WhenAny(exit, Task.Delay(100));
            }

            var code = await exit;
            output.WriteLine($"node 3 exited with {code}; readiness samples after resume: {string.Join(',', samples)}");
            Assert.Equal(3, code);
            Assert.Contains(cluster.Report(3).Split('\n'), l => l.Contains("Removed from the cluster", StringComparison.Ordinal));
            var firstNotReady = samples.FindIndex(s => s != 200);
            Assert.True(firstNotReady < 0 || samples.Skip(firstNotReady).All(s => s != 200),
                $"readiness went back to 200 after it had turned false: {string.Join(',', samples)}");
            Assert.True(closed.Task.IsCompleted, "the client of node 3 was not disconnected");
            await Assert.ThrowsAnyAsync<SocketException>(async () =>
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", cluster.MqttPorts[2]);
            });

            // What a supervisor does: start it again. It joins and serves; messages cross between it and node 1.
            await cluster.StartNodeAsync(3);
            await WaitUntilAsync(async () => await MemberCountAsync(http, cluster.HttpPorts[0]) == 3, TimeSpan.FromSeconds(30),
                "node 1 does not list the restarted node 3");
            var subscriber = new MqttClientFactory().CreateMqttClient();
            var received = new MessageCollector(subscriber);
            await subscriber.ConnectAsync(Options(cluster.MqttPorts[0], "sub-on-1"));
            await E2E.SubscribeAsync(subscriber, "after/restart");
            var publisher = new MqttClientFactory().CreateMqttClient();
            await publisher.ConnectAsync(Options(cluster.MqttPorts[2], "pub-on-3"));
            await E2E.PublishAsync(publisher, "after/restart", "hello");
            await received.WaitForAsync(1, TimeSpan.FromSeconds(15));
            Assert.Equal("hello", E2E.Text(received.Messages.Single()));
        }
        catch
        {
            for (var n = 1; n <= 3; n++)
            {
                var log = cluster.Report(n);
                output.WriteLine($"===== node {n} =====\n{(log.Length > 20_000 ? log[^20_000..] : log)}");
            }

            throw;
        }
    }

    private static MqttClientOptions Options(int port, string id) =>
        new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(id).WithTimeout(TimeSpan.FromSeconds(10)).Build();

    /// <summary>The status code of GET /health/ready, or 0 when nothing answers.</summary>
    private static async Task<int> ReadinessAsync(HttpClient http, int port)
    {
        try
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{port}/health/ready");
            return (int)response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    private static async Task<int> MemberCountAsync(HttpClient http, int port)
    {
        try
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{port}/api/cluster/members");
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return json.RootElement.GetProperty("count").GetInt32();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException)
        {
            return -1;
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string failure)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{failure} after {timeout.TotalSeconds} s");
            await Task.Delay(200);
        }
    }
}
