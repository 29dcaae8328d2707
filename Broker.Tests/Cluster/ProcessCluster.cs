using Broker.Tests.Durability;
using Broker.Tests.Interop;

namespace Broker.Tests.Cluster;

/// <summary>
/// Three Broker.Node processes on 127.0.0.1 forming one cluster on a fresh database of a throwaway PostgreSQL, for
/// the specs that kill, stop and restart whole nodes. Each node keeps its MQTT and remoting ports for the life of the
/// fixture, so a stopped node (or the whole cluster) can be started again on the same addresses; node 1 is the seed.
/// Dispose kills every node still running (by PID) and then stops PostgreSQL.
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    private readonly PostgresServer _postgres;
    private readonly string _database;
    private readonly string _connectionString;
    private readonly string[] _extraArgs;
    private readonly BrokerNodeProcess?[] _nodes = new BrokerNodeProcess?[3];
    private readonly List<BrokerNodeProcess> _ended = new();
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-cluster-").FullName;
    private readonly int[] _mqttPorts;
    private readonly int[] _clusterPorts;
    private readonly int[]? _httpPorts;

    private ProcessCluster(PostgresServer postgres, string database, string connectionString, string[] extraArgs, bool operations)
    {
        _postgres = postgres;
        _database = database;
        _connectionString = connectionString;
        _extraArgs = extraArgs;
        // All at once: picked one after the other, the OS may hand out a port twice (InteropEnvironment.FreePorts).
        var ports = InteropEnvironment.FreePorts(9);
        _mqttPorts = ports[..3];
        _clusterPorts = ports[3..6];
        _httpPorts = operations ? ports[6..] : null;
    }

    /// <summary>MQTT ports of nodes 1..3 (index 0..2); they stay the same across restarts.</summary>
    public IReadOnlyList<int> MqttPorts => _mqttPorts;

    /// <summary>Remoting ports of nodes 1..3 (index 0..2), as in the nodes' cluster addresses.</summary>
    public IReadOnlyList<int> ClusterPorts => _clusterPorts;

    /// <summary>Operations HTTP ports (health, management API with <see cref="ManagementToken"/>) when started with them.</summary>
    public IReadOnlyList<int> HttpPorts => _httpPorts ?? throw new InvalidOperationException("started without operations HTTP");

    public const string ManagementToken = "process-cluster-token-0123456789";

    /// <summary>An HTTP client for the management API (started with operations), the token in its headers.</summary>
    public static HttpClient ManagementClient()
    {
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ManagementToken);
        return http;
    }

    /// <summary>
    /// A client with a session that outlives its connection (<paramref name="options"/> says how), connected to node
    /// <paramref name="via"/>, whose session entity is not on node <paramref name="avoid"/>: sessions go to the least
    /// loaded node, so a few client ids ("prefix-0", "prefix-1", ...) at most.
    /// </summary>
    public async Task<(string Id, Broker.Tests.EndToEnd.RawMqttClient Client)> ConnectAwayFromAsync(
        HttpClient http, int via, int avoid, string prefix, MQTTnet.Formatter.MqttProtocolVersion version,
        Func<Broker.Protocol.Packets.MqttConnectPacket, Broker.Protocol.Packets.MqttConnectPacket> options)
    {
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var id = $"{prefix}-{attempt}";
            var (client, connAck) = await Broker.Tests.EndToEnd.RawMqttClient.ConnectAsync(MqttPorts[via - 1], version, id, options);
            Assert.Equal(0, (int)connAck.ReasonCode);
            if (await SessionNodeAsync(http, via, id) != avoid)
            {
                return (id, client);
            }

            await client.DisposeAsync();
        }

        throw new InvalidOperationException($"no session off node {avoid} in 10 tries");
    }

    /// <summary>The node (1..3) where <paramref name="clientId"/>'s session entity lives (its home), asked through node <paramref name="via"/>'s management API.</summary>
    public async Task<int> SessionNodeAsync(HttpClient http, int via, string clientId)
    {
        using var json = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{HttpPorts[via - 1]}/api/clients/{clientId}"));
        var session = json.RootElement.GetProperty("session");
        var node = session.TryGetProperty("home", out var home) && home.ValueKind == System.Text.Json.JsonValueKind.String
            ? home.GetString()!
            : session.GetProperty("node").GetString()!; // a clean session's: where it runs
        var port = int.Parse(node[(node.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return ClusterPorts.ToList().IndexOf(port) + 1;
    }

    public static Task<ProcessCluster> StartAsync(params string[] extraArgs) => StartAsync(operations: false, extraArgs);

    /// <summary>As <see cref="StartAsync(string[])"/>, each node also serving health and the management API.</summary>
    public static Task<ProcessCluster> StartWithOperationsAsync(params string[] extraArgs) => StartAsync(operations: true, extraArgs);

    private static async Task<ProcessCluster> StartAsync(bool operations, string[] extraArgs)
    {
        var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        var cluster = new ProcessCluster(postgres, "cluster", await postgres.CreateDatabaseAsync("cluster"), extraArgs, operations);
        try
        {
            await cluster.StartAllAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts node 1 (the seed), then nodes 2 and 3 together; returns when all three said "Broker ready".</summary>
    public async Task StartAllAsync()
    {
        await StartNodeAsync(1);
        await Task.WhenAll(StartNodeAsync(2), StartNodeAsync(3));
    }

    /// <summary>Starts node <paramref name="n"/> (1..3) on its ports and waits until it is Up and listening.</summary>
    public async Task StartNodeAsync(int n)
    {
        Assert.Null(_nodes[n - 1]);
        _nodes[n - 1] = await BrokerNodeProcess.StartOnAsync(_mqttPorts[n - 1], _clusterPorts[n - 1],
        [
            "--Storage:Provider=postgresql",
            $"--Storage:ConnectionString={_connectionString}",
            $"--Cluster:SeedNodes:0=akka.tcp://broker@127.0.0.1:{_clusterPorts[0]}",
            $"--Node:DataDir={Path.Combine(_dataDir, "node" + n)}",
            // As in cluster-config/node*.json: a publish whose delivery went to a node that died in the meantime is
            // refused (v5 0x80; 3.1.1: disconnect) after 5 s instead of 15, so its publisher retries sooner.
            "--Mqtt:DurableAckTimeout=5",
            .. _httpPorts is null ? Array.Empty<string>()
                : ["--Metrics:Address=127.0.0.1", $"--Metrics:Port={_httpPorts[n - 1]}", $"--Management:Token={ManagementToken}"],
            .. _extraArgs,
        ]);
    }

    public BrokerNodeProcess Node(int n) => _nodes[n - 1] ?? throw new InvalidOperationException($"node {n} is not running");

    /// <summary>SIGKILL: a crash, nothing runs on the way out.</summary>
    public async Task KillAsync(int n)
    {
        var node = Node(n);
        await node.KillHardAsync();
        Ended(n, node);
    }

    /// <summary>SIGTERM and wait (bounded) for the graceful stop: clients closed with 0x8B, shards handed off, left.</summary>
    public async Task TerminateAsync(int n)
    {
        var node = Node(n);
        node.Process.Terminate();
        var code = await node.Process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Ended(n, node);
        Assert.True(code == 0, $"node {n} exited with {code} after SIGTERM\n{node.Process.Report()}");
    }

    /// <summary>Waits (bounded) for node <paramref name="n"/> to end on its own and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(int n, TimeSpan timeout)
    {
        var node = Node(n);
        var code = await node.Process.WaitForExitAsync(timeout);
        Ended(n, node);
        return code;
    }

    /// <summary>The log of a node, running or ended (the latest process of that node).</summary>
    public string Report(int n) =>
        (_nodes[n - 1] ?? _ended.LastOrDefault(e => e.MqttPort == _mqttPorts[n - 1]))?.Process.Report() ?? "";

    /// <summary>
    /// Runs a spec's body; when it fails, keeps the evidence before Dispose deletes it: the log of every node process
    /// this fixture ran (ended ones first, in the order they ended) and a dump of the database, in a directory under
    /// <c>$BROKER_TEST_EVIDENCE</c> (default: the temporary directory's <c>broker-test-evidence</c>) that the failure
    /// message names. The rare failure of a multi-process spec can then be read afterwards, not only guessed at.
    /// </summary>
    public async Task KeepEvidenceOnFailureAsync(string name, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch (Exception failure)
        {
            string where;
            try
            {
                where = await KeepEvidenceAsync(name);
            }
            catch (Exception keeping)
            {
                where = $"(not kept: {keeping.Message})";
            }

            throw new Xunit.Sdk.XunitException($"{failure.Message}\nnode logs and database dump: {where}", failure);
        }
    }

    /// <summary>Writes every node's log and a database dump to a new evidence directory and returns its path.</summary>
    public async Task<string> KeepEvidenceAsync(string name)
    {
        var root = Environment.GetEnvironmentVariable("BROKER_TEST_EVIDENCE") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Path.GetTempPath(), "broker-test-evidence");
        var dir = Directory.CreateDirectory(Path.Combine(root, $"{name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..4]}")).FullName;
        var runs = new Dictionary<int, int>();
        foreach (var node in _ended.Concat(_nodes.OfType<BrokerNodeProcess>()))
        {
            var n = Array.IndexOf(_mqttPorts, node.MqttPort) + 1;
            runs[n] = runs.GetValueOrDefault(n) + 1;
            await File.WriteAllTextAsync(Path.Combine(dir, $"node{n}-run{runs[n]}-pid{node.Process.Pid}.log"), node.Process.Report());
        }

        await _postgres.DumpAsync(_database, Path.Combine(dir, "database.sql"));
        await File.WriteAllTextAsync(Path.Combine(dir, "postgres.log"), _postgres.Log());
        return dir;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var node in _nodes.Concat(_ended))
            {
                node?.Dispose();
            }
        }
        finally
        {
            await _postgres.DisposeAsync();
            try
            {
                Directory.Delete(_dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private void Ended(int n, BrokerNodeProcess node)
    {
        _nodes[n - 1] = null;
        _ended.Add(node);
    }
}
