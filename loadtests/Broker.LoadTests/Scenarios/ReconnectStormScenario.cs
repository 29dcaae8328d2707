using System.Diagnostics;
using System.Globalization;
using System.Net;
using Broker.LoadTests.Runner;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// A network outage and its aftermath: --max-connections devices (default 2,000; lean raw-socket clients) connect,
/// each subscribes to its own topic and sees its own message come back; then all of them are dropped at once (TCP
/// reset, no DISCONNECT: the broker sees connections vanish) and every device reconnects after a random wait of up
/// to --backoff (default 2 s), retrying with a doubling back-off (capped at --backoff) while the broker refuses it
/// (CONNACK code not 0), resets it or does not answer within 10 s. A device is back when its CONNACK arrives; messages
/// flow again for it when its own publish (QoS 1, subscribed at QoS 0, sent once SUBACK is in)
/// has come back through the broker. Reported: time from the drop until every device is back and until every
/// device's message has flowed, refusals and failed tries, and the broker's RSS before and at its peak during the
/// storm (sampled every 100 ms). With --persistent the devices keep persistent sessions, which the storm resumes.
/// </summary>
public sealed class ReconnectStormScenario(ScenarioContext context) : Scenario(context)
{
    private static readonly TimeSpan TryTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StormLimit = TimeSpan.FromSeconds(120);
    private LeanDevice?[] _devices = [];
    private byte[][] _frames = [];
    private byte[][] _publish = [];
    private long[] _backAt = [];
    private long[] _flowingAt = [];
    private BrokerProcesses? _broker;
    private long _refused;
    private long _failed;
    private long _tries;
    private long _rssPeak;

    public override string Name => "reconnect-storm";

    public override string Description =>
        $"{Count:N0} devices dropped at once reconnect within a random {Options.Backoff.TotalSeconds:0.#} s back-off" +
        (Options.Persistent ? " (persistent sessions)" : "");

    public override bool CountsOperations => true;

    public override string RateUnit => "reconnects/s";

    /// <summary>Connects in flight while the devices first connect (the storm itself has no limit).</summary>
    public override int VirtualClients => Options.Clients ?? 100;

    private int Count => Options.MaxConnections ?? 2_000;

    public override IReadOnlyList<LoadSimulation> DefaultLoad => [new LoadSimulation.KeepConstant(0, TimeSpan.Zero)];

    public override TimeSpan DefaultDrain => TimeSpan.Zero;

    public override Task IterationAsync(int client, CancellationToken ct) => Task.Delay(1, ct);

    private IPEndPoint Target(int i)
    {
        var t = Options.TargetOf(i);
        return new IPEndPoint(IPAddress.Parse(t.Host == "localhost" ? "127.0.0.1" : t.Host), t.Port);
    }

    public override async Task SetupAsync(CancellationToken ct)
    {
        _broker = BrokerProcesses.Find(Options);
        var version = Options.Version;
        var clean = !Options.Persistent;
        _devices = new LeanDevice?[Count];
        _backAt = new long[Count];
        _flowingAt = new long[Count];
        _frames = Enumerable.Range(0, Count).Select(i =>
        {
            var topic = $"rs/{Context.RunId}/{i}";
            return LeanDevice.Frames(version,
                LeanDevice.Connect($"rs-{Context.RunId}-{i}", version, clean, clean ? 0u : 3600u),
                new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = topic, QoS = MqttQoS.AtMostOnce }] });
        }).ToArray();
        _publish = Enumerable.Range(0, Count).Select(i => LeanDevice.Frames(version,
            new MqttPublishPacket { Topic = $"rs/{Context.RunId}/{i}", QoS = MqttQoS.AtLeastOnce, PacketId = 2, Payload = new byte[8] })).ToArray();

        // Everyone connected and flowing before the outage (not measured).
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Math.Min(VirtualClients, Count)).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Count && !ct.IsCancellationRequested)
            {
                for (var attempt = 0; _devices[i] is null && attempt < 5; attempt++)
                {
                    try
                    {
                        _devices[i] = (await TryAsync(i, 0, ct)).Device;
                    }
                    catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
                    {
                        await Task.Delay(200, ct);
                    }
                }
            }
        }, CancellationToken.None)));
        var connected = _devices.Count(d => d is not null);
        Facts["devices connected before the outage"] = connected.ToString("N0", CultureInfo.InvariantCulture);
        if (connected < Count)
        {
            throw new InvalidOperationException($"only {connected} of {Count} devices connected before the outage");
        }
    }

    /// <summary>
    /// One try: CONNECT and SUBSCRIBE in one write; after SUBACK the PUBLISH (the broker may route a publish that
    /// follows a SUBSCRIBE on the same connection before the subscription is in place); then PUBACK and the echo.
    /// </summary>
    private async Task<(LeanDevice? Device, byte Code)> TryAsync(int i, long stormStart, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TryTimeout);
        var (device, code) = await LeanDevice.OpenAsync(Target(i), _frames[i], timeout.Token);
        if (device is null)
        {
            return (null, code);
        }

        bool subAck = false, pubAck = false, echo = false;
        try
        {
            if (stormStart > 0)
            {
                _backAt[i] = Stopwatch.GetTimestamp();
            }

            while (!(subAck && pubAck && echo))
            {
                var (type, body, length) = await device.ReadPacketAsync(timeout.Token);
                switch (type)
                {
                    case 9:
                        subAck = true;
                        if (Options.Version != MqttProtocolVersion.V500 && length >= 3 && device[body + 2] >= 0x80)
                        {
                            throw new IOException("SUBSCRIBE refused");
                        }

                        await device.SendAsync(_publish[i], timeout.Token);

                        break;
                    case 4:
                        pubAck = true;
                        break;
                    case 3:
                        echo = true;
                        break;
                }

                device.Consume(body + length);
            }

            if (stormStart > 0)
            {
                _flowingAt[i] = Stopwatch.GetTimestamp();
            }

            return (device, 0);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            device.Abort();
            throw new TimeoutException($"no answer within {TryTimeout.TotalSeconds:0} s after CONNACK ({(subAck ? "" : "no ")}SUBACK, " +
                $"{(pubAck ? "" : "no ")}PUBACK, {(echo ? "" : "no ")}echo)");
        }
        catch
        {
            device.Abort();
            throw;
        }
    }

    public override async Task DuringMeasurementAsync(CancellationToken ct)
    {
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var rssBefore = _broker?.Rss() ?? 0;
        _rssPeak = rssBefore;
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                if (_broker?.Rss() is { } rss && rss > _rssPeak)
                {
                    _rssPeak = rss;
                }

                await Task.Delay(100, sampling.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }, CancellationToken.None);

        var stormStart = Stopwatch.GetTimestamp();
        foreach (var d in _devices)
        {
            d?.Abort();
        }

        Array.Clear(_devices);
        await Task.WhenAll(Enumerable.Range(0, Count).Select(i => ReconnectAsync(i, stormStart, ct)));
        await sampling.CancelAsync();
        await sampler;
        Summarize(stormStart, rssBefore);
    }

    private async Task ReconnectAsync(int i, long stormStart, CancellationToken ct)
    {
        var backoff = Options.Backoff.TotalMilliseconds;
        await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * backoff), ct);
        for (var attempt = 1; Stopwatch.GetElapsedTime(stormStart) < StormLimit && !ct.IsCancellationRequested; attempt++)
        {
            var started = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _tries);
            try
            {
                var (device, code) = await TryAsync(i, stormStart, ct);
                if (device is not null)
                {
                    _devices[i] = device;
                    Metrics.OnOperation((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                    return;
                }

                Interlocked.Increment(ref _refused);
                Metrics.OnError($"CONNACK return code 0x{code:X2}");
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref _failed);
                Metrics.OnError(e is OperationCanceledException ? "no CONNACK within 10 s" : $"{e.GetType().Name}: {e.Message}");
            }

            // Doubling back-off with full jitter, capped at --backoff.
            var cap = Math.Min(backoff, 100 * Math.Pow(2, attempt));
            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * cap), ct);
        }
    }

    private void Summarize(long stormStart, long rssBefore)
    {
        var inv = CultureInfo.InvariantCulture;
        double Seconds(long at) => at == 0 ? double.NaN : Stopwatch.GetElapsedTime(stormStart, at).TotalSeconds;
        var back = _backAt.Count(t => t > stormStart);
        var flowing = _flowingAt.Count(t => t > stormStart);
        Facts["devices back (CONNACK) / messages flowing"] = string.Create(inv, $"{back:N0} / {flowing:N0} of {Count:N0}");
        if (back == Count)
        {
            Facts["all reconnected after"] = string.Create(inv, $"{_backAt.Max(Seconds):0.00} s");
        }

        if (flowing == Count)
        {
            Facts["messages flow again after"] = string.Create(inv, $"{_flowingAt.Max(Seconds):0.00} s");
        }

        Facts["refused (CONNACK code not 0)"] = _refused.ToString("N0", inv);
        Facts["failed tries (reset, closed, no answer in 10 s)"] = _failed.ToString("N0", inv);
        Facts["tries"] = _tries.ToString("N0", inv);
        if (_rssPeak > 0)
        {
            Facts["broker RSS before the outage"] = string.Create(inv, $"{rssBefore / 1048576.0:0.0} MB");
            Facts["broker RSS peak during the storm"] = string.Create(inv, $"{_rssPeak / 1048576.0:0.0} MB");
        }
    }

    public override async Task TeardownAsync()
    {
        var disconnect = LeanDevice.Frames(Options.Version, new MqttDisconnectPacket());
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
