using System.Diagnostics;
using System.Globalization;
using Broker.LoadTests.Runner;
using Broker.Protocol;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Retained storm: set-up stores --topics retained messages (QoS 1, four publishers, <c>rs/{run}/{p}/{n}</c>);
/// each iteration then connects a new client, subscribes to <c>rs/{run}/#</c> and waits until every retained message
/// arrived (the latency is SUBSCRIBE to the last one). Afterwards the retained messages are cleared.
/// </summary>
public sealed class RetainedStormScenario(ScenarioContext context) : Scenario(context)
{
    private const int Publishers = 4;
    private PublisherRecord[] _records = [];
    private int _fetches;
    private long _incomplete;

    public override string Name => "retained-storm";

    public override string Description => $"{Options.Topics:N0} retained topics, then {VirtualClients} clients subscribe to the wildcard over and over";

    public override bool CountsOperations => true;

    public override string RateUnit => "fetches/s";

    public override int VirtualClients => Options.Clients ?? 5;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(5, 5, TimeSpan.FromSeconds(5))];

    private string Prefix => $"rs/{Context.RunId}";

    public override async Task SetupAsync(CancellationToken ct)
    {
        _records = Enumerable.Range(0, Publishers).Select(p => Metrics.RegisterPublisher(p, MqttQoS.AtLeastOnce)).ToArray();
        var started = Stopwatch.GetTimestamp();
        var publishers = await ConnectManyAsync(Publishers, p => ConnectAsync(p, $"rs-{Context.RunId}-pub-{p}", ct));
        try
        {
            await Task.WhenAll(Enumerable.Range(0, Publishers).Select(async p =>
            {
                var count = Options.Topics / Publishers + (p < Options.Topics % Publishers ? 1 : 0);
                for (var sent = 0; sent < count; sent += 100)
                {
                    await publishers[p].PublishBatchAsync(_records[p], "", Math.Min(100, count - sent), Options.PayloadSize, true, ct,
                        topicOf: seq => $"{Prefix}/{p}/{seq}");
                }

                await publishers[p].WaitForAcksAsync(TimeSpan.FromSeconds(60));
            }));
        }
        finally
        {
            await DisposeAllAsync(publishers);
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        Facts["retained messages stored (acknowledged)"] = string.Create(CultureInfo.InvariantCulture,
            $"{_records.Sum(r => r.Acked.Count):N0} in {elapsed:0.00} s = {_records.Sum(r => r.Acked.Count) / elapsed:N0} msg/s");
    }

    public override async Task IterationAsync(int client, CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _fetches) - 1;
        Metrics.ExpectAtSubscriber(n, Enumerable.Range(0, Publishers).ToArray());
        var all = _records.Sum(r => r.Acked.Count);
        var got = 0L;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var subscriber = await ConnectAsync(n, $"rs-{Context.RunId}-sub-{n}", ct, DefaultSettings with { ReadBufferSize = 256 * 1024 }, p =>
        {
            Metrics.OnReceived(n, p.Payload.Span);
            if (Interlocked.Increment(ref got) >= all)
            {
                done.TrySetResult();
            }

            return null;
        });
        var started = Stopwatch.GetTimestamp();
        await subscriber.SubscribeAsync($"{Prefix}/#", MqttQoS.AtLeastOnce, ct);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct, subscriber.Closed);
        limit.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await done.Task.WaitAsync(limit.Token);
            Metrics.OnOperation((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            Interlocked.Increment(ref _incomplete);
            Metrics.OnError($"fetch {n}: {Interlocked.Read(ref got)} of {all} retained messages within 30 s");
        }
    }

    public override Task BeforeDrainAsync(CancellationToken ct)
    {
        Facts["fetches that did not get every retained message"] = Interlocked.Read(ref _incomplete).ToString(CultureInfo.InvariantCulture);
        return Task.CompletedTask;
    }

    public override async Task TeardownAsync()
    {
        // Clear what was stored: an empty retained message deletes a topic's retained message.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var cleaner = await ConnectAsync(0, $"rs-{Context.RunId}-cleaner", cts.Token);
        foreach (var record in _records)
        {
            var topics = Enumerable.Range(0, (int)record.Sent.Count).Select(seq => $"{Prefix}/{record.Id}/{seq}").ToArray();
            foreach (var chunk in topics.Chunk(200))
            {
                var packets = chunk.Select(t => (Broker.Protocol.Packets.MqttPacket)new Broker.Protocol.Packets.MqttPublishPacket { Topic = t, Retain = true }).ToArray();
                foreach (var p in packets)
                {
                    await cleaner.SendAsync(p, cts.Token);
                }
            }
        }
    }
}
