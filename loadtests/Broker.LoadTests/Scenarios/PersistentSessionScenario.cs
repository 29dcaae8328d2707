using System.Globalization;
using Broker.LoadTests.Runner;
using Broker.Protocol;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Persistent sessions going offline and online while messages queue: S subscribers with persistent sessions
/// (3.1.1 clean session 0, or v5 with a session expiry) on <c>ps/{run}/#</c> at QoS 1; P publishers publish QoS 1 on
/// their own topics. While measuring, each subscriber cycles: online for --online, DISCONNECT, offline for --offline
/// (the broker queues for it), reconnect without clean start (session present expected). Loss counts acknowledged
/// messages a subscriber never got; duplicates are QoS 1 redeliveries of messages in flight at a disconnect.
/// </summary>
public sealed class PersistentSessionScenario(ScenarioContext context) : Scenario(context)
{
    private LoadClient[] _publishers = [];
    private PublisherRecord[] _records = [];
    private LoadClient?[] _subscribers = [];
    private long _reconnects;
    private long _sessionsMissing;

    public override string Name => "persistent-sessions";

    public override string Description =>
        $"{VirtualClients} QoS {(int)MaxQoS} publishers, {SubscriberCount} persistent subscribers cycling {Options.Online.TotalSeconds:0.#} s online / {Options.Offline.TotalSeconds:0.#} s offline";

    public override int VirtualClients => Options.Clients ?? 5;

    public override MqttQoS DefaultQoS => MqttQoS.AtLeastOnce;

    private int SubscriberCount => Options.Subscribers ?? 5;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(100, 100, TimeSpan.FromSeconds(10))];

    private string Prefix => $"ps/{Context.RunId}";

    private ClientSettings Persistent => DefaultSettings with { CleanStart = false, SessionExpiry = 600 };

    private Task<LoadClient> ConnectSubscriberAsync(int s, ClientSettings settings, CancellationToken ct) =>
        ConnectAsync(s, $"ps-{Context.RunId}-sub-{s}", ct, settings, p =>
        {
            Metrics.OnReceived(s, p.Payload.Span);
            return null;
        });

    public override async Task SetupAsync(CancellationToken ct)
    {
        _subscribers = await ConnectManyAsync<LoadClient?>(SubscriberCount, async s =>
        {
            var client = await ConnectSubscriberAsync(s, Persistent, ct);
            await client.SubscribeAsync($"{Prefix}/#", MaxQoS, ct);
            return client;
        });
        _records = Enumerable.Range(0, VirtualClients).Select(p => Metrics.RegisterPublisher(p, QoSOf(p))).ToArray();
        for (var s = 0; s < SubscriberCount; s++)
        {
            Metrics.ExpectAtSubscriber(s, Enumerable.Range(0, VirtualClients).ToArray());
        }

        _publishers = await ConnectManyAsync(VirtualClients, p => ConnectAsync(p + 1, $"ps-{Context.RunId}-pub-{p}", ct));
    }

    public override Task IterationAsync(int client, CancellationToken ct) =>
        _publishers[client].PublishBatchAsync(_records[client], $"{Prefix}/{client}", Batch, Options.PayloadSize, false, ct);

    public override async Task DuringMeasurementAsync(CancellationToken ct)
    {
        var load = Options.Load ?? DefaultLoad;
        var end = DateTime.UtcNow + load.Aggregate(TimeSpan.Zero, (t, l) => t + l.Duration);
        // Subscribers start their cycles staggered, so that some are always online and some offline.
        await Task.WhenAll(Enumerable.Range(0, SubscriberCount).Select(async s =>
        {
            await Task.Delay(Options.Online * s / Math.Max(1, SubscriberCount), ct);
            while (DateTime.UtcNow + Options.Online + Options.Offline < end && !ct.IsCancellationRequested)
            {
                await Task.Delay(Options.Online, ct);
                await DisposeAllAsync([_subscribers[s]]);
                _subscribers[s] = null;
                await Task.Delay(Options.Offline, ct);
                var client = await ConnectSubscriberAsync(s, Persistent, ct);
                Interlocked.Increment(ref _reconnects);
                if (!client.SessionPresent)
                {
                    Interlocked.Increment(ref _sessionsMissing);
                    Metrics.OnError($"subscriber {s}: CONNACK without session present after going offline");
                }

                _subscribers[s] = client;
            }
        }));
    }

    public override async Task BeforeDrainAsync(CancellationToken ct)
    {
        await Task.WhenAll(_publishers.Select(p => p.WaitForAcksAsync(DrainLimit)));
        Facts["offline/online cycles"] = Interlocked.Read(ref _reconnects).ToString(CultureInfo.InvariantCulture);
        Facts["reconnects without session present"] = Interlocked.Read(ref _sessionsMissing).ToString(CultureInfo.InvariantCulture);
    }

    public override async Task TeardownAsync()
    {
        await DisposeAllAsync(_publishers);
        await DisposeAllAsync(_subscribers);
        // Leave no sessions behind: a clean-start connect discards each one.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var s = 0; s < SubscriberCount; s++)
        {
            try
            {
                await DisposeAllAsync([await ConnectAsync(s, $"ps-{Context.RunId}-sub-{s}", cts.Token, DefaultSettings)]);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException or OperationCanceledException)
            {
            }
        }
    }
}
