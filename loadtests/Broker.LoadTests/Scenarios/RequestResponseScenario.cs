using System.Buffers.Binary;
using Broker.LoadTests.Runner;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Device to backend request/response over MQTT 5: device i subscribes to its response topic
/// <c>rr/{run}/resp/{i}</c> and publishes requests on <c>rr/{run}/req/{i}</c> with Response Topic and Correlation
/// Data (its id); the backends (a shared subscription when there are several) answer each request on its Response
/// Topic with the same Correlation Data and the request's payload. Latency is the round trip; loss counts requests
/// the broker owed an answer to (sent at QoS 0, acknowledged at QoS 1/2) that never got one.
/// </summary>
public sealed class RequestResponseScenario(ScenarioContext context) : Scenario(context)
{
    private LoadClient[] _devices = [];
    private PublisherRecord[] _records = [];
    private LoadClient[] _backends = [];
    private long _mismatched;

    public override string Name => "request-response";

    public override string Description => $"{VirtualClients} MQTT 5 devices, {Backends} backend(s); requests carry response topic + correlation data";

    public override int VirtualClients => Options.Clients ?? 20;

    private int Backends => Options.Subscribers ?? 1;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(500, 500, TimeSpan.FromSeconds(10))];

    private string Prefix => $"rr/{Context.RunId}";

    private ClientSettings V5 => DefaultSettings with { Version = MqttProtocolVersion.V500 };

    public override async Task SetupAsync(CancellationToken ct)
    {
        var filter = Backends > 1 ? $"$share/rr{Context.RunId}/{Prefix}/req/+" : $"{Prefix}/req/+";
        _backends = await ConnectManyAsync(Backends, async b =>
        {
            LoadClient? self = null;
            var client = await ConnectAsync(b, $"rr-{Context.RunId}-backend-{b}", ct, V5, request =>
            {
                if (request.Properties.ResponseTopic is not { } responseTopic)
                {
                    Metrics.OnError("a request without a response topic");
                    return null;
                }

                var reply = self!.UntrackedPublish(responseTopic, request.Payload, request.QoS,
                    new MqttMessageProperties { CorrelationData = request.Properties.CorrelationData });
                return reply is null ? null : [reply];
            });
            self = client;
            await client.SubscribeAsync(filter, MaxQoS, ct);
            return client;
        });

        _records = Enumerable.Range(0, VirtualClients).Select(d => Metrics.RegisterPublisher(d, QoSOf(d))).ToArray();
        _devices = await ConnectManyAsync(VirtualClients, async d =>
        {
            var expected = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(expected, d);
            var client = await ConnectAsync(d + 1, $"rr-{Context.RunId}-device-{d}", ct, V5, response =>
            {
                if (response.Properties.CorrelationData is not { } cd || !cd.Span.SequenceEqual(expected))
                {
                    Interlocked.Increment(ref _mismatched);
                    Metrics.OnError($"device {d}: a response without its correlation data");
                    return null;
                }

                Metrics.OnReceived(d, response.Payload.Span);
                return null;
            });
            await client.SubscribeAsync($"{Prefix}/resp/{d}", MaxQoS, ct);
            Metrics.ExpectAtSubscriber(d, d);
            return client;
        });
        Context.Log($"{_backends.Length} backend(s) and {_devices.Length} devices connected");
    }

    public override Task IterationAsync(int client, CancellationToken ct)
    {
        var correlation = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(correlation, client);
        return _devices[client].PublishBatchAsync(_records[client], $"{Prefix}/req/{client}", Batch, Options.PayloadSize, false, ct,
            new MqttMessageProperties { ResponseTopic = $"{Prefix}/resp/{client}", CorrelationData = correlation });
    }

    public override async Task BeforeDrainAsync(CancellationToken ct)
    {
        await Task.WhenAll(_devices.Select(d => d.WaitForAcksAsync(DrainLimit)));
        Facts["responses with wrong correlation data"] = Interlocked.Read(ref _mismatched).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public override async Task TeardownAsync()
    {
        await DisposeAllAsync(_devices);
        await DisposeAllAsync(_backends);
    }
}
