using Broker.Protocol;

namespace Broker.LoadTests.Runner;

/// <summary>
/// What one virtual client does (NBomber's scenario): <see cref="SetupAsync"/> connects whatever stands still
/// (subscribers, backends), <see cref="IterationAsync"/> is one step of virtual client <c>n</c> (publish a batch,
/// connect, subscribe...), run as the load simulations say; <see cref="BeforeDrainAsync"/> runs after the load
/// (bring offline sessions back, ...); <see cref="TeardownAsync"/> closes everything. All bounded by the token.
/// </summary>
public abstract class Scenario(ScenarioContext context)
{
    protected ScenarioContext Context { get; } = context;

    protected RunOptions Options => Context.Options;

    protected RunMetrics Metrics => Context.Metrics;

    public abstract string Name { get; }

    public abstract string Description { get; }

    /// <summary>What the rate counts: message deliveries to subscribers, or operations (connects, retained fetches).</summary>
    public virtual bool CountsOperations => false;

    public virtual string RateUnit => CountsOperations ? "ops/s" : "msg/s";

    /// <summary>Virtual clients the load simulations drive.</summary>
    public abstract int VirtualClients { get; }

    public abstract IReadOnlyList<LoadSimulation> DefaultLoad { get; }

    public virtual TimeSpan DefaultDrain => TimeSpan.FromSeconds(10);

    /// <summary>QoS of publishers when --qos is not given.</summary>
    public virtual MqttQoS DefaultQoS => MqttQoS.AtMostOnce;

    protected MqttQoS QoSOf(int client) => Options.QoS is { Count: > 0 } ? Options.QoSOf(client) : DefaultQoS;

    protected MqttQoS MaxQoS => Options.QoS is { Count: > 0 } ? Options.MaxQoS : DefaultQoS;

    protected TimeSpan DrainLimit => Options.Drain ?? DefaultDrain;

    /// <summary>Messages per iteration when --batch is not given.</summary>
    public int Batch => Options.Batch ?? ((Options.Load ?? DefaultLoad).Any(l => l is LoadSimulation.KeepConstant) ? 100 : 1);

    /// <summary>Extra results for the report ("broker RSS per connection" = "1.2 KB").</summary>
    public Dictionary<string, string> Facts { get; } = new();

    public abstract Task SetupAsync(CancellationToken ct);

    public abstract Task IterationAsync(int client, CancellationToken ct);

    /// <summary>Started when the measurement starts, awaited before the drain (a node kill, offline cycles).</summary>
    public virtual Task DuringMeasurementAsync(CancellationToken ct) => Task.CompletedTask;

    public virtual Task BeforeDrainAsync(CancellationToken ct) => Task.CompletedTask;

    public abstract Task TeardownAsync();

    /// <summary>Connects a virtual client to its target; spread over the target list by <paramref name="index"/>.</summary>
    protected Task<LoadClient> ConnectAsync(int index, string clientId, CancellationToken ct, ClientSettings? settings = null,
        Func<Broker.Protocol.Packets.MqttPublishPacket, IEnumerable<Broker.Protocol.Packets.MqttPacket>?>? onPublish = null) =>
        LoadClient.ConnectAsync(Options.TargetOf(index), clientId, settings ?? DefaultSettings, Metrics, ct, onPublish);

    protected ClientSettings DefaultSettings => new() { Version = Options.Version, Window = Options.Window };

    /// <summary>Connects many clients, a few at a time (a connect flood is the connect-storm scenario's business).</summary>
    protected static async Task<T[]> ConnectManyAsync<T>(int count, Func<int, Task<T>> connect, int parallel = 16)
    {
        var result = new T[count];
        using var gate = new SemaphoreSlim(parallel);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                result[i] = await connect(i);
            }
            finally
            {
                gate.Release();
            }
        }));
        return result;
    }

    /// <summary>Leaves no persistent sessions behind: a clean-start connect of each (target index, client id) discards its session.</summary>
    protected async Task DiscardSessionsAsync(IReadOnlyList<(int Target, string ClientId)> ids)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await ConnectManyAsync(ids.Count, async i =>
        {
            try
            {
                await DisposeAllAsync([await ConnectAsync(ids[i].Target, ids[i].ClientId, cts.Token, DefaultSettings)]);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException or OperationCanceledException or TimeoutException)
            {
            }

            return 0;
        });
    }

    protected static async Task DisposeAllAsync(IEnumerable<LoadClient?> clients)
    {
        foreach (var c in clients)
        {
            if (c is not null)
            {
                try
                {
                    await c.DisposeAsync();
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
                {
                }
            }
        }
    }
}

/// <summary>What a scenario is given: its options, the metrics to feed, a run id for unique topics and client ids.</summary>
public sealed class ScenarioContext(RunOptions options, RunMetrics metrics, Action<string> log)
{
    public RunOptions Options { get; } = options;

    public RunMetrics Metrics { get; } = metrics;

    public string RunId { get; } = $"{Environment.ProcessId:x}{DateTime.UtcNow.Ticks % 0xFFFFFF:x}";

    public void Log(string message) => log(message);
}
