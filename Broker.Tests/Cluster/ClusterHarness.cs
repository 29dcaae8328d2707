using Akka.Actor;
using Akka.Cluster;
using Broker.Configuration;
using Broker.Tests.Durability;
using Broker.Tests.EndToEnd;
using Broker.Tests.Interop;
using Broker.Transport;
using MQTTnet;
using MQTTnet.Formatter;

namespace Broker.Tests.Cluster;

/// <summary>
/// N broker nodes in one test process: N <see cref="BrokerServer"/>s, each its own ActorSystem "broker" with its own
/// remoting port and MQTT port on 127.0.0.1, all journaling to one PostgreSQL database. Node 1 is the seed (its seed
/// list holds its own address, which Akka treats as "the first seed joins itself"); the others join it. Start returns
/// once every node sees all N members Up. Clients made here are disposed with the harness; Dispose stops every node
/// that is still running (graceful leave, last node first).
/// </summary>
public sealed class ClusterHarness : IAsyncDisposable
{
    private static readonly TimeSpan ConvergeTimeout = TimeSpan.FromSeconds(60);
    private readonly List<IMqttClient> _clients = new();
    private readonly BrokerServer?[] _nodes;

    private ClusterHarness(BrokerServer?[] nodes)
    {
        _nodes = nodes;
    }

    public int Count => _nodes.Length;

    /// <summary>Node <paramref name="number"/> (1-based, as in the specs' prose); throws if it was stopped.</summary>
    public BrokerServer Node(int number) =>
        _nodes[number - 1] ?? throw new InvalidOperationException($"Node {number} was stopped");

    public int MqttPort(int number) => Node(number).MqttEndPoint.Port;

    public IEnumerable<BrokerServer> Running => _nodes.Where(n => n is not null)!;

    public static async Task<ClusterHarness> StartAsync(
        string connectionString,
        int count = 3,
        Func<BrokerOptions, BrokerOptions>? configure = null)
    {
        // A port picked free can be taken by another process before the node binds it (CI runs many test processes
        // and brokers at once): then start again on other ports, a bounded number of times.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(connectionString, count, configure);
            }
            catch (PortInUseException) when (attempt < 3)
            {
            }
        }
    }

    private static async Task<ClusterHarness> StartOnceAsync(
        string connectionString,
        int count,
        Func<BrokerOptions, BrokerOptions>? configure)
    {
        var remotingPorts = InteropEnvironment.FreePorts(count);
        var seed = $"akka.tcp://broker@127.0.0.1:{remotingPorts[0]}";
        BrokerOptions OptionsFor(int i)
        {
            var options = new BrokerOptions
            {
                Mqtt = new MqttOptions { Address = "127.0.0.1", Port = 0 },
                Node = new NodeOptions { DataDir = Path.Combine(Path.GetTempPath(), "broker-cluster-" + Guid.NewGuid().ToString("N")) },
                Storage = new StorageOptions { Provider = "postgresql", ConnectionString = connectionString },
                Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = remotingPorts[i], SeedNodes = [seed] },
            };
            return configure?.Invoke(options) ?? options;
        }

        var nodes = new BrokerServer?[count];
        var harness = new ClusterHarness(nodes);
        try
        {
            // The seed first: the others can only join a cluster that exists.
            nodes[0] = await BrokerServer.StartAsync(OptionsFor(0)).WaitAsync(ConvergeTimeout);
            var rest = Enumerable.Range(1, count - 1)
                .Select(async i => nodes[i] = await BrokerServer.StartAsync(OptionsFor(i)).WaitAsync(ConvergeTimeout))
                .ToList();
            await Task.WhenAll(rest);
            await harness.WaitForMembersUpAsync(count);
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every running node sees exactly <paramref name="count"/> members, all Up.</summary>
    public async Task WaitForMembersUpAsync(int count)
    {
        var deadline = DateTime.UtcNow + ConvergeTimeout;
        while (true)
        {
            var views = Running.Select(n => Akka.Cluster.Cluster.Get(n.System).State.Members).ToList();
            if (views.All(m => m.Count == count && m.All(x => x.Status == MemberStatus.Up)))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Cluster did not converge: " + string.Join(" | ",
                    views.Select(m => string.Join(", ", m.Select(x => $"{x.Address.Port}:{x.Status}")))));
            }

            await Task.Delay(50);
        }
    }

    public MqttClientOptionsBuilder Options(int node, MqttProtocolVersion version, string clientId) =>
        new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", MqttPort(node))
            .WithProtocolVersion(version)
            .WithClientId(clientId)
            .WithTimeout(TimeSpan.FromSeconds(10));

    /// <summary>A client (disposed with the harness) that is not yet connected.</summary>
    public IMqttClient NewClient()
    {
        var client = new MqttClientFactory().CreateMqttClient();
        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }

    /// <summary>Connects a clean-start client to node <paramref name="node"/>.</summary>
    public async Task<IMqttClient> ConnectAsync(int node, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var client = NewClient();
        await client.ConnectAsync(Options(node, version, clientId).WithCleanStart(true).Build());
        return client;
    }

    /// <summary>Connects a client to node <paramref name="node"/> and starts collecting what it receives.</summary>
    public async Task<(IMqttClient Client, MessageCollector Received)> ConnectCollectingAsync(
        int node, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var client = NewClient();
        var received = new MessageCollector(client);
        await client.ConnectAsync(Options(node, version, clientId).WithCleanStart(true).Build());
        return (client, received);
    }

    /// <summary>Graceful stop of one node: its clients get 0x8B (v5), it leaves the cluster, its shards move.</summary>
    public async Task StopNodeAsync(int number)
    {
        var node = Node(number);
        _nodes[number - 1] = null;
        await node.DisposeAsync().AsTask().WaitAsync(ConvergeTimeout);
    }

    /// <summary>
    /// In-process stand-in for a crash: a survivor marks the node Down at once (as the split-brain resolver would after
    /// it became unreachable), so its shards are allocated elsewhere and recover from the journal without a hand-off;
    /// then the node's system and listener are stopped. It does not simulate lost TCP connections or unflushed state
    /// (clients see the node close their connection); a real SIGKILL is done with <see cref="BrokerNodeProcess"/>.
    /// </summary>
    public async Task CrashNodeAsync(int number)
    {
        var node = Node(number);
        var survivor = Running.First(n => n != node);
        Akka.Cluster.Cluster.Get(survivor.System).Down(Akka.Cluster.Cluster.Get(node.System).SelfAddress);
        _nodes[number - 1] = null;
        await node.DisposeAsync().AsTask().WaitAsync(ConvergeTimeout);
        await WaitForMembersUpAsync(Running.Count());
    }

    public async ValueTask DisposeAsync()
    {
        List<IMqttClient> clients;
        lock (_clients)
        {
            clients = _clients.ToList();
        }

        foreach (var client in clients)
        {
            try
            {
                if (client.IsConnected)
                {
                    await client.DisconnectAsync().WaitAsync(TimeSpan.FromSeconds(5));
                }
            }
            catch (Exception)
            {
                // The test may have broken the connection on purpose.
            }

            client.Dispose();
        }

        var errors = new List<Exception>();
        for (var i = _nodes.Length - 1; i >= 0; i--)
        {
            if (_nodes[i] is not { } node)
            {
                continue;
            }

            _nodes[i] = null;
            try
            {
                await node.DisposeAsync().AsTask().WaitAsync(ConvergeTimeout);
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
            finally
            {
                TryDelete(node.Options.Node.DataDir);
            }
        }

        if (errors.Count > 0)
        {
            throw new AggregateException("Stopping the cluster failed", errors);
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// One throwaway PostgreSQL and one three-node cluster shared by the cluster specs that do not stop nodes (routing,
/// takeover, serialization): they use distinct client ids and topics. Every node's serialization is watched from the
/// start (<see cref="SerializationWatch"/>).
/// </summary>
public sealed class ThreeNodeClusterFixture : IAsyncLifetime
{
    public PostgresServer Postgres { get; } = new();

    public ClusterHarness Cluster { get; private set; } = null!;

    public SerializationWatch Serialization { get; } = new();

    public async Task InitializeAsync()
    {
        await Postgres.InitializeAsync();
        try
        {
            Cluster = await ClusterHarness.StartAsync(await Postgres.CreateDatabaseAsync("cluster3"));
            foreach (var node in Cluster.Running)
            {
                Serialization.Install(node.System);
            }
        }
        catch
        {
            await Postgres.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (Cluster is not null)
            {
                await Cluster.DisposeAsync();
            }
        }
        finally
        {
            await Postgres.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ThreeNodeClusterCollection : ICollectionFixture<ThreeNodeClusterFixture>
{
    public const string Name = "Three-node cluster";
}

/// <summary>
/// A three-node cluster of a spec class's own (one per test), for specs that stop or crash nodes: a throwaway
/// PostgreSQL and the nodes, started before each test and stopped after it.
/// </summary>
public abstract class OwnClusterSpecs(string database) : IAsyncLifetime
{
    private readonly PostgresServer _postgres = new();

    protected ClusterHarness Cluster { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        Cluster = await ClusterHarness.StartAsync(await _postgres.CreateDatabaseAsync(database));
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (Cluster is not null)
            {
                await Cluster.DisposeAsync();
            }
        }
        finally
        {
            await _postgres.DisposeAsync();
        }
    }
}
