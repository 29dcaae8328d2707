using System.Diagnostics;
using System.Globalization;
using System.Net;
using Broker.LoadTests.Runner;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// Connection rate and memory per idle connection, with the leanest generator the runner has (<see cref="LeanDevice"/>):
/// --max-connections devices (default 10,000) connect as fast as the broker takes them, --clients at a time (default
/// 100 in flight), and stay connected and idle. The measured part is that one pass: the rate is CONNACKs per second,
/// the latency CONNECT to CONNACK. Clean sessions by default; with --persistent the devices first create persistent
/// sessions and leave (not measured), and the measured pass resumes them (CONNACK must say session present), after
/// --away (default 0: the broker still holds them in memory unless it passivates sooner than the set-up takes).
/// After --hold the broker's RSS is read after a full GC (<see cref="FullGc"/>, .NET brokers only) and compared with
/// the same figure before the pass: RSS growth per open connection, and the managed heap's growth beside it.
/// </summary>
public sealed class ConnectRateScenario(ScenarioContext context) : Scenario(context)
{
    private LeanDevice?[] _devices = [];
    private BrokerProcesses? _broker;
    private (long Rss, long? Heap)? _before;
    private long _refused;
    private long _failed;
    private long _notPresent;

    public override string Name => "connect-rate";

    public override string Description =>
        $"{Count:N0} {(Options.Persistent ? "persistent sessions resume" : "clean sessions connect")}{(Options.Subscribe ? ", each subscribes to its command topic" : "")}, {VirtualClients} in flight, and stay idle";

    public override bool CountsOperations => true;

    public override string RateUnit => "connects/s";

    /// <summary>Connects in flight at once.</summary>
    public override int VirtualClients => Options.Clients ?? 100;

    private int Count => Options.MaxConnections ?? 10_000;

    // The pass runs in DuringMeasurementAsync; the load simulation itself has nothing to do.
    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.KeepConstant(0, TimeSpan.Zero)];

    public override TimeSpan DefaultDrain => TimeSpan.Zero;

    private string ClientId(int i) => $"cr-{Context.RunId}-{i}";

    private IPEndPoint Target(int i)
    {
        var t = Options.TargetOf(i);
        return new IPEndPoint(IPAddress.Parse(t.Host == "localhost" ? "127.0.0.1" : t.Host), t.Port);
    }

    public override async Task SetupAsync(CancellationToken ct)
    {
        _broker = BrokerProcesses.Find(Options);
        _devices = new LeanDevice?[Count];
        // Warm-up: a few hundred connects and disconnects, so that the broker's code is compiled before the pass.
        var warm = Math.Min(500, Count);
        await PassAsync(warm, i => $"cr-{Context.RunId}-warm-{i}", cleanStart: true, keep: false, measure: false, ct);
        if (Options.Persistent)
        {
            // The sessions to resume: created and left (DISCONNECT), not measured.
            await PassAsync(Count, ClientId, cleanStart: false, keep: false, measure: false, ct);
            Context.Log($"connect-rate: {Count:N0} persistent sessions created");
            if (Options.Away > TimeSpan.Zero)
            {
                await Task.Delay(Options.Away, ct);
                Context.Log($"connect-rate: the sessions were offline for {Options.Away.TotalSeconds:0.#} s");
            }
        }

        _before = Memory("before");
    }

    public override Task IterationAsync(int client, CancellationToken ct) => Task.Delay(1, ct);

    public override Task DuringMeasurementAsync(CancellationToken ct) =>
        PassAsync(Count, ClientId, cleanStart: !Options.Persistent, keep: true, measure: true, ct);

    /// <summary>Connects devices 0..count-1, <see cref="VirtualClients"/> at a time.</summary>
    private async Task PassAsync(int count, Func<int, string> id, bool cleanStart, bool keep, bool measure, CancellationToken ct)
    {
        var next = 0;
        var version = Options.Version;
        var disconnect = LeanDevice.Frames(version, new Broker.Protocol.Packets.MqttDisconnectPacket());
        await Task.WhenAll(Enumerable.Range(0, Math.Min(VirtualClients, count)).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next) - 1) < count && !ct.IsCancellationRequested)
            {
                var connect = LeanDevice.Connect(id(i), version, cleanStart, cleanStart ? 0u : 3600u);
                var frames = Options.Subscribe
                    ? LeanDevice.Frames(version, connect, CommandSubscription(id(i)))
                    : LeanDevice.Frames(version, connect);
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var (device, code) = await LeanDevice.OpenAsync(Target(i), frames, ct);
                    if (device is null)
                    {
                        Interlocked.Increment(ref _refused);
                        Metrics.OnError($"CONNACK return code 0x{code:X2}");
                        continue;
                    }

                    if (Options.Subscribe)
                    {
                        var (type, body, length) = await device.ReadPacketAsync(ct);
                        device.Consume(body + length);
                        if (type != 9)
                        {
                            throw new IOException($"expected SUBACK, got packet type {type}");
                        }
                    }

                    if (measure)
                    {
                        Metrics.OnOperation((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                        if (!cleanStart && !device.SessionPresent)
                        {
                            Interlocked.Increment(ref _notPresent);
                        }
                    }

                    if (keep)
                    {
                        _devices[i] = device;
                    }
                    else
                    {
                        await device.SendAsync(disconnect, ct);
                        device.Socket.Close();
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
                {
                    Interlocked.Increment(ref _failed);
                    Metrics.OnError($"{e.GetType().Name}: {e.Message}");
                }
            }
        }, CancellationToken.None)));
    }

    /// <summary>The device's own command topic, subscribed at QoS 1 (<c>--subscribe</c>).</summary>
    private static Broker.Protocol.Packets.MqttSubscribePacket CommandSubscription(string clientId) => new()
    {
        PacketId = 1,
        Subscriptions = [new Broker.Protocol.Packets.MqttTopicSubscription { TopicFilter = $"devices/{clientId}/cmd", QoS = Broker.Protocol.MqttQoS.AtLeastOnce }],
    };

    private (long Rss, long? Heap)? Memory(string label)
    {
        if (_broker is not { Pids.Count: 1 } broker)
        {
            return _broker?.Rss() is { } rss ? (rss, null) : null;
        }

        var dumpDir = Options.ReportDir ?? Path.Combine(Path.GetTempPath(), "connect-rate-" + Context.RunId);
        var heap = FullGc.Collect(broker.Pids[0], Path.Combine(dumpDir, $"broker-{label}.gcdump"), Context.Log);
        Thread.Sleep(500);
        return broker.Rss() is { } after ? (after, heap) : null;
    }

    public override async Task BeforeDrainAsync(CancellationToken ct)
    {
        await Task.Delay(Options.Hold, ct);
        var open = _devices.Count(d => d is not null && d.Socket.Connected);
        var inv = CultureInfo.InvariantCulture;
        Facts["connections open after hold"] = open.ToString("N0", inv);
        Facts["refused (CONNACK code not 0)"] = _refused.ToString("N0", inv);
        Facts["failed (socket error, closed)"] = _failed.ToString("N0", inv);
        if (Options.Persistent)
        {
            Facts["resumed without session present"] = _notPresent.ToString("N0", inv);
        }

        var after = Memory("after");
        if (after is { } a && _before is { } b && open > 0)
        {
            Facts["broker RSS before / with the connections (after a full GC)"] =
                string.Create(inv, $"{b.Rss / 1048576.0:0.0} / {a.Rss / 1048576.0:0.0} MB");
            Facts["broker RSS per idle connection"] = string.Create(inv, $"{(a.Rss - b.Rss) / 1024.0 / open:0.00} KB");
            Facts["rss_per_connection_bytes"] = ((a.Rss - b.Rss) / open).ToString(inv);
            if (a.Heap is { } ha && b.Heap is { } hb)
            {
                Facts["broker managed heap per idle connection"] = string.Create(inv, $"{(ha - hb) / 1024.0 / open:0.00} KB");
                Facts["heap_per_connection_bytes"] = ((ha - hb) / open).ToString(inv);
            }
        }
    }

    public override async Task TeardownAsync()
    {
        // Connections end with DISCONNECT (a persistent session stays stored; the broker is started fresh per run).
        var disconnect = LeanDevice.Frames(Options.Version, new Broker.Protocol.Packets.MqttDisconnectPacket());
        foreach (var d in _devices)
        {
            if (d is null)
            {
                continue;
            }

            try
            {
                await d.SendAsync(disconnect, CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
            }

            d.Socket.Close();
        }
    }
}
