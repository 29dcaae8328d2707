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
/// Subscribers subscribe at the highest QoS in --qos, so each message arrives at its publisher's QoS. Subscriber i
/// connects to target i (modulo the targets); a point-to-point publisher goes where --spread puts it (by default the
/// next target, so that with several nodes every pair crosses), other publishers to the target after their index.
/// With --persistent every client keeps a persistent session, discarded at the end of the run.
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
        _ => $"{VirtualClients} pair(s): publisher i to subscriber i on topic i" +
            (Options.Targets.Count > 1 ? $", spread {Options.Spread.ToString().ToLowerInvariant()} ({CrossingPairs} crossing targets)" : ""),
    } + (Options.Persistent ? "; persistent sessions" : "");

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

    /// <summary>The connect index of publisher <paramref name="p"/> (its target is Targets[index % count]).</summary>
    private int PublisherTargetIndex(int p) => _shape != Shape.PointToPoint ? p + 1 : Options.Spread switch
    {
        PairSpread.Same => p,
        PairSpread.Even => p + (p / Options.Targets.Count),
        _ => p + 1,
    };

    private int CrossingPairs => Enumerable.Range(0, VirtualClients)
        .Count(p => Options.TargetOf(p) != Options.TargetOf(PublisherTargetIndex(p)));

    private ClientSettings Session(ClientSettings settings) =>
        Options.Persistent ? settings with { CleanStart = false, SessionExpiry = 600 } : settings;

    private string SubscriberId(int s) => $"{Prefix}-sub-{s}".Replace('/', '-');

    private string PublisherId(int p) => $"{Prefix}-pub-{p}".Replace('/', '-');

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
        var subscriberSettings = Session(DefaultSettings with { ReadBufferSize = _shape == Shape.FanIn ? 1024 * 1024 : 64 * 1024 });
        _subscribers = await ConnectManyAsync(SubscriberCount, async s =>
        {
            var pace = s < Options.SlowSubscribers ? new ReadPace(Options.SlowRate) : null;
            var client = await ConnectAsync(s, SubscriberId(s), ct, subscriberSettings, p =>
            {
                Metrics.OnReceived(s, p.Payload.Span);
                pace?.Wait();
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

        // Publishers connect after the subscribers, each where --spread puts it relative to its pair's subscriber.
        _publishers = await ConnectManyAsync(VirtualClients, p =>
            ConnectAsync(PublisherTargetIndex(p), PublisherId(p), ct, Session(DefaultSettings)));
        if (_shape == Shape.PointToPoint)
        {
            Facts["pairs crossing targets"] = $"{CrossingPairs} of {VirtualClients} (spread {Options.Spread.ToString().ToLowerInvariant()})";
        }

        Context.Log($"{_subscribers.Length} subscriber(s) and {_publishers.Length} publisher(s) connected");
        if (Options.SlowSubscribers > 0)
        {
            Facts["slow subscribers"] = $"{Math.Min(Options.SlowSubscribers, SubscriberCount)} reading at most {Options.SlowRate:N0} msg/s";
        }

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
        if (Options.Persistent)
        {
            await DiscardSessionsAsync();
        }
    }

    private Task DiscardSessionsAsync() => DiscardSessionsAsync(
        Enumerable.Range(0, SubscriberCount).Select(s => (s, SubscriberId(s)))
            .Concat(Enumerable.Range(0, VirtualClients).Select(p => (PublisherTargetIndex(p), PublisherId(p)))).ToArray());
}

/// <summary>
/// A slow consumer: blocks the subscriber's read loop so that it takes at most <c>rate</c> messages a second (its
/// socket is then read no faster, and the broker sees a client that falls behind).
/// </summary>
internal sealed class ReadPace(int rate)
{
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _count;

    public void Wait()
    {
        var due = TimeSpan.FromSeconds((double)++_count / Math.Max(1, rate));
        var ahead = due - System.Diagnostics.Stopwatch.GetElapsedTime(_started);
        if (ahead > TimeSpan.FromMilliseconds(2))
        {
            Thread.Sleep(ahead);
        }
    }
}
