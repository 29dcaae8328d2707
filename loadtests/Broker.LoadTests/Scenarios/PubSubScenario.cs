using Broker.LoadTests.Runner;
using Broker.Protocol;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Publishers and subscribers in one of three shapes; each publisher is a virtual client whose iteration publishes a
/// batch on its own topic:
/// <list type="bullet">
/// <item>fan-in: P publishers on <c>fi/{run}/{i}</c>, S subscribers (default 1) on <c>fi/{run}/#</c>;</item>
/// <item>fan-out: P publishers (default 1) on <c>fo/{run}/t</c>, S subscribers (default 100) on it;</item>
/// <item>point-to-point: P pairs, publisher i on <c>p2p/{run}/{i}</c> and subscriber i on that topic alone.</item>
/// </list>
/// Subscribers subscribe at the highest QoS in --qos, so each message arrives at its publisher's QoS.
/// </summary>
public sealed class PubSubScenario : Scenario
{
    public enum Shape
    {
        FanIn,
        FanOut,
        PointToPoint,
    }

    private readonly Shape _shape;
    private LoadClient[] _publishers = [];
    private PublisherRecord[] _records = [];
    private LoadClient[] _subscribers = [];

    public PubSubScenario(ScenarioContext context, Shape shape)
        : base(context)
    {
        _shape = shape;
    }

    public override string Name => _shape switch { Shape.FanIn => "fan-in", Shape.FanOut => "fan-out", _ => "point-to-point" };

    public override string Description => _shape switch
    {
        Shape.FanIn => $"{VirtualClients} publishers, each on its own topic; {SubscriberCount} subscriber(s) on the wildcard",
        Shape.FanOut => $"{VirtualClients} publisher(s) on one topic; {SubscriberCount} subscribers on it",
        _ => $"{VirtualClients} pair(s): publisher i to subscriber i on topic i",
    };

    public override int VirtualClients => Options.Clients ?? _shape switch { Shape.FanIn => 50, Shape.FanOut => 1, _ => 50 };

    private int SubscriberCount => _shape switch
    {
        Shape.PointToPoint => VirtualClients,
        Shape.FanIn => Options.Subscribers ?? 1,
        _ => Options.Subscribers ?? 100,
    };

    public override IReadOnlyList<LoadSimulation> DefaultLoad =>
        [new LoadSimulation.KeepConstant(VirtualClients, TimeSpan.FromSeconds(10))];

    private string Prefix => _shape switch { Shape.FanIn => "fi", Shape.FanOut => "fo", _ => "p2p" } + "/" + Context.RunId;

    private string TopicOf(int publisher) => _shape switch
    {
        Shape.FanOut => $"{Prefix}/t",
        _ => $"{Prefix}/{publisher}",
    };

    private string FilterOf(int subscriber) => _shape switch
    {
        Shape.FanIn => $"{Prefix}/#",
        Shape.FanOut => $"{Prefix}/t",
        _ => $"{Prefix}/{subscriber}",
    };

    public override async Task SetupAsync(CancellationToken ct)
    {
        var subscriberSettings = DefaultSettings with { ReadBufferSize = _shape == Shape.FanIn ? 1024 * 1024 : 64 * 1024 };
        _subscribers = await ConnectManyAsync(SubscriberCount, async s =>
        {
            var client = await ConnectAsync(s, $"{Prefix}-sub-{s}".Replace('/', '-'), ct, subscriberSettings, p =>
            {
                Metrics.OnReceived(s, p.Payload.Span);
                return null;
            });
            await client.SubscribeAsync(FilterOf(s), MaxQoS, ct);
            return client;
        });

        _records = Enumerable.Range(0, VirtualClients).Select(p => Metrics.RegisterPublisher(p, QoSOf(p))).ToArray();
        for (var s = 0; s < SubscriberCount; s++)
        {
            Metrics.ExpectAtSubscriber(s, _shape == Shape.PointToPoint ? [s] : Enumerable.Range(0, VirtualClients).ToArray());
        }

        // Publishers connect after the subscribers, each to the target after its pair's (so pairs cross nodes in a cluster).
        _publishers = await ConnectManyAsync(VirtualClients, p =>
            ConnectAsync(p + 1, $"{Prefix}-pub-{p}".Replace('/', '-'), ct));
        Context.Log($"{_subscribers.Length} subscriber(s) and {_publishers.Length} publisher(s) connected");
        await PrimeAsync(ct);
    }

    /// <summary>
    /// One message from every publisher, awaited at every subscriber (bounded): a fresh broker may start a topic's
    /// route on its first message (an entity recovering from the journal), which is no part of the steady state the
    /// warm-up and the measurement are about. The time it took is reported.
    /// </summary>
    private async Task PrimeAsync(CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var owed = _shape switch
        {
            Shape.PointToPoint => (long)VirtualClients,
            _ => (long)VirtualClients * SubscriberCount,
        };
        await Task.WhenAll(Enumerable.Range(0, VirtualClients).Select(p =>
            _publishers[p].PublishBatchAsync(_records[p], TopicOf(p), 1, Options.PayloadSize, false, ct)));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Metrics.Received < owed && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, ct);
        }

        var took = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        Facts["first message on every route (priming)"] = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Metrics.Received:N0} of {owed:N0} in {took:0.00} s");
        Context.Log($"routes primed: {Metrics.Received} of {owed} first messages arrived in {took:0.00} s");
    }

    public override Task IterationAsync(int client, CancellationToken ct) =>
        _publishers[client].PublishBatchAsync(_records[client], TopicOf(client), Batch, Options.PayloadSize, false, ct);

    public override async Task BeforeDrainAsync(CancellationToken ct)
    {
        await Task.WhenAll(_publishers.Select(p => p.WaitForAcksAsync(DrainLimit)));
    }

    public override async Task TeardownAsync()
    {
        await DisposeAllAsync(_publishers);
        await DisposeAllAsync(_subscribers);
    }
}
