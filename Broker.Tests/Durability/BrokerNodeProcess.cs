using Broker.Tests.Interop;

namespace Broker.Tests.Durability;

/// <summary>
/// Broker.Node as a separate process (<c>dotnet Broker.Node.dll</c>) on free MQTT and cluster ports, so that a spec
/// can kill it with SIGKILL like a crash and start another one on the same storage. Dispose kills the process (by its
/// PID) if it is still running.
/// </summary>
public sealed class BrokerNodeProcess : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private BrokerNodeProcess(ExternalProcess process, int mqttPort)
    {
        Process = process;
        MqttPort = mqttPort;
    }

    public ExternalProcess Process { get; }

    public int MqttPort { get; }

    public static string NodeDll => Path.Combine(AppContext.BaseDirectory, "Broker.Node.dll");

    /// <summary>
    /// Starts a node with the given storage flags on free ports and waits for its "Broker ready" line. A port free when
    /// picked can be taken by another process before the node binds it (seen in CI); the node then stops with "already
    /// in use", and it is started again on other free ports (three tries).
    /// </summary>
    public static async Task<BrokerNodeProcess> StartAsync(params string[] args)
    {
        for (var attempt = 1; ; attempt++)
        {
            var node = Launch(args);
            try
            {
                await node.Process.WaitForLineAsync(l => l.Contains("Broker ready: MQTT listening on", StringComparison.Ordinal), StartTimeout);
                return node;
            }
            catch when (attempt < 3 && node.Process.StdoutLines.Concat([node.Process.Stderr])
                .Any(l => l.Contains("is already in use by another process", StringComparison.Ordinal)))
            {
                node.Dispose();
            }
            catch
            {
                node.Dispose();
                throw;
            }
        }
    }

    /// <summary>Starts a node without waiting for it (start-up failure specs).</summary>
    public static BrokerNodeProcess Launch(params string[] args) =>
        LaunchOn(InteropEnvironment.FreePort(), InteropEnvironment.FreePort(), args);

    /// <summary>Starts a node on given MQTT and remoting ports (cluster specs: seed addresses, restarts on the same ports).</summary>
    public static async Task<BrokerNodeProcess> StartOnAsync(int mqttPort, int clusterPort, params string[] args)
    {
        var node = LaunchOn(mqttPort, clusterPort, args);
        try
        {
            await node.Process.WaitForLineAsync(l => l.Contains("Broker ready: MQTT listening on", StringComparison.Ordinal), StartTimeout);
            return node;
        }
        catch
        {
            node.Dispose();
            throw;
        }
    }

    private static BrokerNodeProcess LaunchOn(int mqttPort, int clusterPort, string[] args)
    {
        Assert.True(File.Exists(NodeDll), $"{NodeDll} is missing: Broker.Tests must reference Broker.Node");
        var process = ExternalProcess.Start("dotnet",
            [NodeDll, "--Mqtt:Address=127.0.0.1", $"--Mqtt:Port={mqttPort}", "--Cluster:Hostname=127.0.0.1", $"--Cluster:Port={clusterPort}", .. args]);
        return new BrokerNodeProcess(process, mqttPort);
    }

    /// <summary>SIGKILL: no graceful stop, no flush beyond what the broker already committed.</summary>
    public Task KillHardAsync() => Process.KillHardAsync(TimeSpan.FromSeconds(15));

    /// <summary>The log lines at warning level or above (Microsoft console logger "warn:"/"fail:", Akka "[WARNING]"/"[ERROR]").</summary>
    public IReadOnlyList<string> Problems() =>
        Process.StdoutLines.Concat(Process.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            .Where(l => l.Contains("warn:", StringComparison.Ordinal) || l.Contains("fail:", StringComparison.Ordinal) ||
                l.Contains("crit:", StringComparison.Ordinal) || l.Contains("[WARNING]", StringComparison.Ordinal) ||
                l.Contains("[ERROR]", StringComparison.Ordinal))
            .ToList();

    public void Dispose() => Process.Dispose();
}
