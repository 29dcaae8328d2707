using Broker.Configuration;
using MQTTnet;
using MQTTnet.Formatter;

namespace Broker.Tests.EndToEnd;

/// <summary>
/// Boots a real broker node in-process (a one-node Akka cluster, sharding, the DotNetty listener) on 127.0.0.1 with
/// free ports, and connects real MQTTnet clients to it over TCP. Dispose stops the node and every client made here.
/// </summary>
public sealed class BrokerHarness : IAsyncDisposable
{
    private readonly List<IMqttClient> _clients = new();
    private readonly string _dataDir;

    private BrokerHarness(BrokerServer server, string dataDir)
    {
        Server = server;
        _dataDir = dataDir;
    }

    public BrokerServer Server { get; }

    public int Port => Server.MqttEndPoint.Port;

    public static async Task<BrokerHarness> StartAsync(
        Func<BrokerOptions, BrokerOptions>? configure = null, Broker.Security.IAuthenticator? authenticator = null)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "broker-test-" + Guid.NewGuid().ToString("N"));
        var options = new BrokerOptions
        {
            Mqtt = new MqttOptions { Address = "127.0.0.1", Port = 0 },
            Node = new NodeOptions { DataDir = dataDir },
            Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = 0 },
        };
        options = configure?.Invoke(options) ?? options;
        var server = await BrokerServer.StartAsync(options, authenticator: authenticator);
        return new BrokerHarness(server, dataDir);
    }

    public MqttClientOptionsBuilder Options(MqttProtocolVersion version, string clientId) =>
        new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", Port)
            .WithProtocolVersion(version)
            .WithClientId(clientId)
            .WithTimeout(TimeSpan.FromSeconds(10));

    /// <summary>Connects a client with clean start and returns it; it is disposed with the harness.</summary>
    public async Task<IMqttClient> ConnectAsync(
        MqttProtocolVersion version,
        string clientId,
        Action<MqttClientOptionsBuilder>? configure = null)
    {
        var builder = Options(version, clientId).WithCleanStart(true);
        configure?.Invoke(builder);
        var client = new MqttClientFactory().CreateMqttClient();
        _clients.Add(client);
        await client.ConnectAsync(builder.Build());
        return client;
    }

    /// <summary>The client id's session entity (sharding's path on this node), to send it what a shard or journal would.</summary>
    public Akka.Actor.ActorSelection SessionEntity(string clientId) =>
        Server.System.ActorSelection($"/system/sharding/session/{Server.Context.SessionShardOf(clientId)}/{clientId}");

    /// <summary>The topic's sharded entity on this node (sharding escapes the name in the path).</summary>
    public Akka.Actor.ActorSelection TopicEntity(string topic) =>
        Server.System.ActorSelection($"/system/sharding/topic/{Server.Context.TopicShardOf(topic)}/{Uri.EscapeDataString(topic)}");

    public IMqttClient NewClient()
    {
        var client = new MqttClientFactory().CreateMqttClient();
        _clients.Add(client);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            try
            {
                if (client.IsConnected)
                {
                    await client.DisconnectAsync();
                }
            }
            catch (Exception)
            {
                // The test may have broken the connection on purpose.
            }

            client.Dispose();
        }

        await Server.DisposeAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Collects the application messages a client receives, so that tests can wait for them without sleeping.</summary>
public sealed class MessageCollector
{
    private readonly List<MqttApplicationMessage> _messages = new();
    private readonly SemaphoreSlim _signal = new(0);

    public MessageCollector(IMqttClient client)
    {
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (_messages)
            {
                _messages.Add(e.ApplicationMessage);
            }

            _signal.Release();
            return Task.CompletedTask;
        };
    }

    public IReadOnlyList<MqttApplicationMessage> Messages
    {
        get
        {
            lock (_messages)
            {
                return _messages.ToList();
            }
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> messages arrived; fails the test after the timeout.</summary>
    public Task<IReadOnlyList<MqttApplicationMessage>> WaitForAsync(int count, TimeSpan? timeout = null) =>
        WaitUntilAsync(messages => messages.Count >= count, timeout, () => $"Expected {count} messages, got {Messages.Count}");

    /// <summary>Waits until the messages so far satisfy <paramref name="done"/> (checked on each arrival); fails the test after the timeout.</summary>
    public async Task<IReadOnlyList<MqttApplicationMessage>> WaitUntilAsync(
        Func<IReadOnlyList<MqttApplicationMessage>, bool> done, TimeSpan? timeout = null, Func<string>? describe = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var messages = Messages;
            if (done(messages))
            {
                return messages;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException(describe?.Invoke() ?? $"the awaited messages did not arrive; got {messages.Count}");
            }

            await _signal.WaitAsync(left);
        }
    }

    /// <summary>Asserts that no further message arrives within the window (used for "must not deliver" rules).</summary>
    public async Task AssertNoMoreAsync(int expectedCount, TimeSpan window)
    {
        await Task.Delay(window);
        Assert.Equal(expectedCount, Messages.Count);
    }
}
