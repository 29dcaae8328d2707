using System.Diagnostics;
using System.Globalization;
using Broker.LoadTests.Runner;
using Broker.Protocol;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// The journaled path at a chosen rate: P publishers (default 1, clean) publish on <c>dur/{run}/t</c>, S persistent
/// subscribers (default 1; 3.1.1 clean session 0, v5 session expiry 600 s) take it at QoS 1 or 2. Each iteration
/// publishes one message and waits for its acknowledgement (PUBACK, or PUBREC at QoS 2), which the broker sends only
/// once every persistent subscriber's copy is stored: the latency reported is that wait, the rate counts
/// acknowledgements, and every acknowledged message must reach every subscriber (loss is counted).
/// <code>
///   Broker.LoadTests durable --subscribers 10 --load inject:5000:10s      5,000 publishes/s into 10 stored sessions
/// </code>
/// </summary>
public sealed class DurableLoadScenario(ScenarioContext context) : Scenario(context)
{
    private LoadClient[] _publishers = [];
    private PublisherRecord[] _records = [];
    private LoadClient[] _subscribers = [];
    private long _refused;

    public override string Name => "durable";

    public override string Description =>
        $"{VirtualClients} publisher(s), each publish awaiting its acknowledgement; {SubscriberCount} persistent subscriber(s) storing every message";

    public override bool CountsOperations => true;

    public override string RateUnit => "acknowledged publishes/s";

    public override int VirtualClients => Options.Clients ?? 1;

    private int SubscriberCount => Options.Subscribers ?? 1;

    public override MqttQoS DefaultQoS => MqttQoS.AtLeastOnce;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(1000, 1000, TimeSpan.FromSeconds(10))];

    private string Topic => $"dur/{Context.RunId}/t";

    private string SubscriberId(int s) => $"dur-{Context.RunId}-sub-{s}";

    public override async Task SetupAsync(CancellationToken ct)
    {
        if (MaxQoS == MqttQoS.AtMostOnce)
        {
            throw new ArgumentException("durable: --qos must be 1 or 2 (QoS 0 is never stored)");
        }

        Metrics.DeliveryLatency = false; // the latency reported is the acknowledgement's
        var persistent = DefaultSettings with { CleanStart = false, SessionExpiry = 600, ReadBufferSize = 256 * 1024 };
        _subscribers = await ConnectManyAsync(SubscriberCount, async s =>
        {
            var client = await ConnectAsync(s, SubscriberId(s), ct, persistent, p =>
            {
                Metrics.OnReceived(s, p.Payload.Span);
                return null;
            });
            await client.SubscribeAsync(Topic, MaxQoS, ct);
            return client;
        });

        _records = Enumerable.Range(0, VirtualClients).Select(p => Metrics.RegisterPublisher(p, QoSOf(p))).ToArray();
        for (var s = 0; s < SubscriberCount; s++)
        {
            Metrics.ExpectAtSubscriber(s, Enumerable.Range(0, VirtualClients).ToArray());
        }

        _publishers = await ConnectManyAsync(VirtualClients, p => ConnectAsync(p + 1, $"dur-{Context.RunId}-pub-{p}", ct));
        Context.Log($"{_subscribers.Length} persistent subscriber(s) and {_publishers.Length} publisher(s) connected");
    }

    public override async Task IterationAsync(int client, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        if (!await _publishers[client].PublishAwaitAckAsync(_records[client], Topic, Options.PayloadSize, ct))
        {
            Interlocked.Increment(ref _refused);
        }

        Metrics.OnOperation((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
    }

    public override async Task TeardownAsync()
    {
        await DisposeAllAsync(_publishers);
        await DisposeAllAsync(_subscribers);
        Facts["publishes refused"] = Interlocked.Read(ref _refused).ToString("N0", CultureInfo.InvariantCulture);

        await DiscardSessionsAsync(Enumerable.Range(0, SubscriberCount).Select(s => (s, SubscriberId(s))).ToArray());
    }
}
