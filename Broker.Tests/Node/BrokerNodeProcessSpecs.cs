using Broker.Tests.Interop;
using static Broker.Tests.Interop.InteropEnvironment;

namespace Broker.Tests.Node;

/// <summary>
/// The Broker.Node executable as a separate process (<c>dotnet Broker.Node.dll</c>, copied next to the tests): it
/// starts on the configured ports, says so in one log line, serves the Mosquitto clients and stops cleanly on
/// SIGTERM; a bad setting stops start-up with exit code 2 and a line naming the key and the value.
/// </summary>
public sealed class BrokerNodeProcessSpecs : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-node-spec-").FullName;

    private static string NodeDll => Path.Combine(AppContext.BaseDirectory, "Broker.Node.dll");

    [Fact]
    public async Task Node_should_log_ready_serve_mosquitto_clients_and_exit_0_on_SIGTERM()
    {
        var mqttPort = FreePort();
        var clusterPort = FreePort();
        using var node = StartNode($"--Mqtt:Port={mqttPort}", $"--Cluster:Port={clusterPort}", $"--Node:DataDir={_dataDir}");

        var ready = await node.WaitForLineAsync(l => l.Contains("Broker ready: MQTT listening on", StringComparison.Ordinal), StartTimeout);
        Assert.Contains($"MQTT listening on 127.0.0.1:{mqttPort};", ready);

        using var sub = ExternalProcess.Start(StdBuf,
        [
            "-oL", MosquittoSub, "-h", "127.0.0.1", "-p", mqttPort.ToString(), "-i", "node-spec-sub", "-t", "node/+/state",
            "-q", "1", "-C", "1", "-W", "20", "-d", "-F", "MSG|%t|%p",
        ]);
        await sub.WaitForLineAsync(l => l.Contains("received SUBACK", StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        await ExternalProcess.RunAsync(MosquittoPub,
            ["-h", "127.0.0.1", "-p", mqttPort.ToString(), "-i", "node-spec-pub", "-t", "node/1/state", "-m", "up", "-q", "1"],
            TimeSpan.FromSeconds(20));
        await sub.WaitForSuccessAsync(TimeSpan.FromSeconds(20));
        Assert.Contains("MSG|node/1/state|up", sub.StdoutLines);

        node.Terminate();
        var exitCode = await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exitCode == 0, $"exit code {exitCode}\n{node.Report()}");
    }

    [Theory]
    [InlineData("--Mqtt:Port=70000", "Mqtt:Port", "70000")]
    [InlineData("--Mqtt:Port=abc", "Mqtt:Port", "abc")]
    [InlineData("--Mqtt:Address=nowhere", "Mqtt:Address", "nowhere")]
    [InlineData("--Cluster:SeedNodes=foo", "Cluster:SeedNodes", "foo")]
    [InlineData("--Mqtt:Prot=1", "Mqtt:Prot", "1")]
    public async Task Bad_flag_should_stop_start_up_with_exit_code_2_naming_the_key(string flag, string key, string value)
    {
        // Later flags win: the bad one goes last.
        using var node = StartNode($"--Node:DataDir={_dataDir}", "--Mqtt:Port=0", "--Cluster:Port=0", flag);
        await AssertConfigurationErrorAsync(node, key, value);
    }

    [Fact]
    public async Task Bad_environment_variable_should_stop_start_up_with_exit_code_2_naming_the_key()
    {
        using var node = StartNode(
            new Dictionary<string, string?> { ["BROKER__MQTT__RECEIVEMAXIMUM"] = "0" },
            $"--Node:DataDir={_dataDir}", "--Cluster:Port=0"); // no --Mqtt flag: the section comes only from the variable
        await AssertConfigurationErrorAsync(node, "Mqtt:ReceiveMaximum", "0");
        Assert.Contains("out of range", node.Stderr, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static ExternalProcess StartNode(params string[] args) => StartNode(null, args);

    private static ExternalProcess StartNode(IDictionary<string, string?>? environment, params string[] args)
    {
        Assert.True(File.Exists(NodeDll), $"{NodeDll} is missing: Broker.Tests must reference Broker.Node");
        return ExternalProcess.Start("dotnet", [NodeDll, .. args], environment);
    }

    private static async Task AssertConfigurationErrorAsync(ExternalProcess node, string key, string value)
    {
        var exitCode = await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exitCode == 2, $"exit code {exitCode}, expected 2\n{node.Report()}");
        var lines = node.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("Configuration error: ", line);
        Assert.Contains(key, line, StringComparison.Ordinal);
        Assert.Contains(value, line[(line.IndexOf(key, StringComparison.Ordinal) + key.Length)..], StringComparison.Ordinal);
        Assert.DoesNotContain("Broker ready", node.Stdout, StringComparison.Ordinal);
    }
}
