using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Broker.LoadTests.Runner;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Misbehaving clients around a well-behaved one: one client's trouble must stay its own. What is measured is the
/// PUBACK latency of a well-behaved QoS 1 publisher (each iteration publishes one message on <c>storm/{run}/ok</c> and
/// waits for its PUBACK; --max-p99-ms 50 is the bound), with a subscriber on that topic (loss counted) and a
/// monitoring client subscribed to <c>#</c> that reads everything. Around them, from set-up to teardown, bounded and on
/// the targets only:
/// <list type="bullet">
/// <item>malformed: 10 connections a second that send CONNECT and then a packet of reserved type 0 (closed by the broker);</item>
/// <item>slow: 20 connections that send their CONNECT one byte every 100 ms, over and over;</item>
/// <item>half-open: 20 v3.1.1 sessions subscribed at QoS 1 to <c>storm/{run}/chatter/#</c> that never read again;</item>
/// <item>a noisy v5 publisher on <c>storm/{run}/chatter/n</c> at 200 messages a second (held, then refused 0x97, by the half-open queues);</item>
/// <item>churn: 10 persistent sessions subscribed to the chatter that disconnect and come back every second (their
/// entities recover from the journal).</item>
/// </list>
/// </summary>
public sealed class StormScenario(ScenarioContext context) : Scenario(context)
{
    private const int SlowConnections = 20;
    private const int HalfOpen = 20;
    private const int Churners = 10;
    private readonly CancellationTokenSource _storm = new();
    private readonly List<Task> _loops = new();
    private readonly List<TcpClient> _halfOpen = new();
    private LoadClient? _publisher;
    private LoadClient? _subscriber;
    private LoadClient? _monitor;
    private PublisherRecord? _record;
    private long _monitorReceived;
    private long _malformedSent;
    private long _slowBytes;
    private long _churnCycles;
    private long _refused;
    private long _noisyRefused;

    public override string Name => "storm";

    public override string Description =>
        "a well-behaved QoS 1 publisher's PUBACK latency while malformed, slow, half-open and churning clients and a noisy publisher run, with a # subscriber";

    public override bool CountsOperations => true;

    public override string RateUnit => "PUBACKs/s";

    public override int VirtualClients => 1;

    public override MqttQoS DefaultQoS => MqttQoS.AtLeastOnce;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.Inject(50, 50, TimeSpan.FromSeconds(20))];

    private string Prefix => $"storm/{Context.RunId}";

    private string Id(string role) => $"storm-{Context.RunId}-{role}";

    public override async Task SetupAsync(CancellationToken ct)
    {
        Metrics.DeliveryLatency = false; // the latency reported is the PUBACK's alone
        _monitor = await ConnectAsync(0, Id("monitor"), ct, DefaultSettings with { ReadBufferSize = 1024 * 1024 }, _ =>
        {
            Interlocked.Increment(ref _monitorReceived);
            return null;
        });
        await _monitor.SubscribeAsync("#", MqttQoS.AtLeastOnce, ct);
        _subscriber = await ConnectAsync(0, Id("ok-sub"), ct, onPublish: p =>
        {
            Metrics.OnReceived(0, p.Payload.Span);
            return null;
        });
        await _subscriber.SubscribeAsync($"{Prefix}/ok", MqttQoS.AtLeastOnce, ct);
        _record = Metrics.RegisterPublisher(0, MqttQoS.AtLeastOnce);
        Metrics.ExpectAtSubscriber(0, 0);
        _publisher = await ConnectAsync(1, Id("ok-pub"), ct);

        for (var i = 0; i < HalfOpen; i++)
        {
            _halfOpen.Add(await HalfOpenAsync(i, ct));
        }

        var token = _storm.Token;
        _loops.Add(Task.Run(() => MalformedAsync(token), token));
        _loops.AddRange(Enumerable.Range(0, SlowConnections).Select(i => Task.Run(() => SlowAsync(i, token), token)));
        _loops.Add(Task.Run(() => NoisyAsync(token), token));
        _loops.AddRange(Enumerable.Range(0, Churners).Select(i => Task.Run(() => ChurnAsync(i, token), token)));
        Context.Log($"storm started: {HalfOpen} half-open sessions, {SlowConnections} slow connections, malformed connections, a noisy publisher, {Churners} churning sessions");
    }

    public override async Task IterationAsync(int client, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var acknowledged = await _publisher!.PublishAwaitAckAsync(_record!, $"{Prefix}/ok", Options.PayloadSize, ct);
        if (!acknowledged)
        {
            Interlocked.Increment(ref _refused);
        }

        Metrics.OnOperation((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
    }

    public override async Task TeardownAsync()
    {
        await _storm.CancelAsync();
        try
        {
            await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or IOException or SocketException)
        {
        }

        foreach (var tcp in _halfOpen)
        {
            tcp.Dispose();
        }

        await DisposeAllAsync([_publisher, _subscriber, _monitor]);
        var n = CultureInfo.InvariantCulture;
        Facts["well-behaved publishes refused"] = Interlocked.Read(ref _refused).ToString("N0", n);
        Facts["# subscriber received"] = Interlocked.Read(ref _monitorReceived).ToString("N0", n);
        Facts["storm: malformed connections, slow bytes sent, churn cycles, noisy publishes refused"] = string.Create(n,
            $"{Interlocked.Read(ref _malformedSent):N0}, {Interlocked.Read(ref _slowBytes):N0}, {Interlocked.Read(ref _churnCycles):N0}, {Interlocked.Read(ref _noisyRefused):N0}");
    }

    private byte[] ConnectBytes(string clientId, MqttProtocolVersion version = MqttProtocolVersion.V311) =>
        MqttPacketEncoder.Encode(new MqttConnectPacket { ProtocolVersion = version, ClientId = clientId, CleanStart = true, KeepAlive = 0 }, version);

    private async Task<TcpClient> OpenAsync(int index, CancellationToken ct)
    {
        var target = Options.TargetOf(index);
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(target.Host, target.Port, ct);
        return tcp;
    }

    /// <summary>A session that subscribes and never reads again (its socket stays open): its queue fills and stays full.</summary>
    private async Task<TcpClient> HalfOpenAsync(int i, CancellationToken ct)
    {
        var tcp = await OpenAsync(i, ct);
        tcp.ReceiveBufferSize = 4096;
        var stream = tcp.GetStream();
        await stream.WriteAsync(ConnectBytes(Id($"half-{i}")), ct);
        await stream.WriteAsync(MqttPacketEncoder.Encode(new MqttSubscribePacket
        {
            PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = $"{Prefix}/chatter/#", QoS = MqttQoS.AtLeastOnce }],
        }, MqttProtocolVersion.V311), ct);
        return tcp;
    }

    private async Task MalformedAsync(CancellationToken ct)
    {
        for (var i = 0; !ct.IsCancellationRequested; i++)
        {
            try
            {
                using var tcp = await OpenAsync(i, ct);
                var stream = tcp.GetStream();
                await stream.WriteAsync(ConnectBytes(Id($"bad-{i % 100}")), ct);
                await stream.WriteAsync(new byte[] { 0x00, 0x02, 0xDE, 0xAD }, ct); // packet type 0 is reserved [MQTT-2.2.1]
                Interlocked.Increment(ref _malformedSent);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
            }

            await Task.Delay(100, ct);
        }
    }

    private async Task SlowAsync(int i, CancellationToken ct)
    {
        var bytes = ConnectBytes(Id($"slow-{i}"));
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var tcp = await OpenAsync(i, ct);
                var stream = tcp.GetStream();
                foreach (var b in bytes)
                {
                    await stream.WriteAsync(new[] { b }, ct);
                    Interlocked.Increment(ref _slowBytes);
                    await Task.Delay(100, ct);
                }

                await Task.Delay(500, ct); // connected at last; go away and start again
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                await Task.Delay(100, ct);
            }
        }
    }

    private async Task NoisyAsync(CancellationToken ct)
    {
        var record = Metrics.RegisterPublisher(1, MqttQoS.AtLeastOnce);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var noisy = await ConnectAsync(2, Id("noisy"), ct, DefaultSettings with { Version = MqttProtocolVersion.V500, Window = 50 });
                var started = Stopwatch.GetTimestamp();
                for (var n = 0; !ct.IsCancellationRequested; n++)
                {
                    var sent = n;
                    _ = noisy.PublishAwaitAckAsync(record, $"{Prefix}/chatter/n", Options.PayloadSize, ct).ContinueWith(t =>
                    {
                        if (t.IsCompletedSuccessfully && !t.Result)
                        {
                            Interlocked.Increment(ref _noisyRefused);
                        }
                    }, TaskScheduler.Default);
                    var due = TimeSpan.FromMilliseconds(5 * (sent + 1)) - Stopwatch.GetElapsedTime(started);
                    if (due > TimeSpan.Zero)
                    {
                        await Task.Delay(due, ct);
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or TimeoutException)
            {
                await Task.Delay(500, ct);
            }
        }
    }

    private async Task ChurnAsync(int i, CancellationToken ct)
    {
        var settings = DefaultSettings with { CleanStart = false, SessionExpiry = 60 };
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using (var client = await ConnectAsync(i, Id($"churn-{i}"), ct, settings))
                {
                    await client.SubscribeAsync($"{Prefix}/chatter/#", MqttQoS.AtLeastOnce, ct);
                    await Task.Delay(500, ct);
                }

                Interlocked.Increment(ref _churnCycles);
                await Task.Delay(500, ct);
            }
            catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or TimeoutException)
            {
                await Task.Delay(500, ct);
            }
        }
    }
}
