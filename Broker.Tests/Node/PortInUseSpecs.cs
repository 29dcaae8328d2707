using Broker.Tests.Durability;
using Broker.Tests.Interop;
using Broker.Tests.Security;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Node;

/// <summary>
/// Two Broker.Node processes on one machine: every port the second is configured with that the first already
/// listens on (MQTT, TLS, Akka remoting, operations HTTP) stops the second at start-up with one line naming the
/// key, the address and the port, and a non-zero exit, while the first keeps serving. Without this, .NET's
/// SO_REUSEPORT on Linux let both bind and the kernel split connections between two unrelated brokers.
/// </summary>
public sealed class PortInUseSpecs : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("broker-port-in-use-").FullName;

    [Fact]
    public async Task Second_node_should_refuse_every_port_the_first_listens_on()
    {
        var pki = TestCertificates.Create(_dir);
        int mqtt = FreePort(), cluster = FreePort(), tls = FreePort(), metrics = FreePort();
        using var first = await BrokerNodeProcess.StartOnAsync(mqtt, cluster,
            $"--Node:DataDir={_dir}/first", $"--Mqtt:Tls:Certificate={pki.ServerCertFile}", $"--Mqtt:Tls:Key={pki.ServerKeyFile}",
            $"--Mqtt:Tls:Port={tls}", $"--Metrics:Port={metrics}");

        (string Key, int Mqtt, int Cluster, int Tls, int Metrics)[] collisions =
        [
            ("Mqtt:Port", mqtt, FreePort(), FreePort(), FreePort()),
            ("Cluster:Port", FreePort(), cluster, FreePort(), FreePort()),
            ("Mqtt:Tls:Port", FreePort(), FreePort(), tls, FreePort()),
            ("Metrics:Port", FreePort(), FreePort(), FreePort(), metrics),
        ];
        foreach (var (key, m, c, t, h) in collisions)
        {
            var taken = key switch { "Mqtt:Port" => m, "Cluster:Port" => c, "Mqtt:Tls:Port" => t, _ => h };
            using var second = ExternalProcess.Start("dotnet",
            [
                BrokerNodeProcess.NodeDll, "--Mqtt:Address=127.0.0.1", $"--Mqtt:Port={m}", "--Cluster:Hostname=127.0.0.1",
                $"--Cluster:Port={c}", $"--Node:DataDir={_dir}/second", $"--Mqtt:Tls:Certificate={pki.ServerCertFile}",
                $"--Mqtt:Tls:Key={pki.ServerKeyFile}", $"--Mqtt:Tls:Port={t}", $"--Metrics:Port={h}",
            ]);
            var exitCode = await second.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exitCode != 0, $"{key}: exit code 0\n{second.Report()}");
            var line = Assert.Single(second.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"{key}: 127.0.0.1:{taken} is already in use", line, StringComparison.Ordinal);
            Assert.DoesNotContain("Broker ready", second.Stdout, StringComparison.Ordinal);
        }

        // The first node still owns its ports: a client there is served, and its HTTP port answers.
        await ExternalProcess.RunAsync(MosquittoPub, ["-h", "127.0.0.1", "-p", mqtt.ToString(), "-t", "still/here", "-m", "x", "-q", "1"],
            TimeSpan.FromSeconds(20));
        using var http = new HttpClient();
        var live = await http.GetAsync($"http://127.0.0.1:{metrics}/health/live");
        Assert.True(live.IsSuccessStatusCode, $"/health/live answered {live.StatusCode}");
        Assert.False(first.Process.HasExited);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
