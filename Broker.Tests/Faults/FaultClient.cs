using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.Cluster;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Faults;

/// <summary>
/// A persistent-session client of a fault run (publisher or subscriber, over the raw client) that behaves as a
/// robust device would: keep alive (a PINGREQ after 2 s of silence, the connection given up after 6 s without any
/// packet: a paused or cut-off node shows no RST), and on any loss of its connection it connects again, clean start
/// off, to the next node in turn and requires "session present"; then it resends the PUBLISH it had not had
/// acknowledged (DUP set) and the PUBREL it had not had completed ([MQTT-4.4.0-1]). QoS 2 is received by method B ([MQTT-4.3.3]): taken
/// on its first PUBLISH, its packet id remembered until PUBREL across reconnects. It records what the checker needs:
/// acknowledged sequence numbers with their times, receipts, the windows without a connection, the nodes it used.
/// </summary>
public sealed class FaultClient
{
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PingAfter = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan DeadAfter = TimeSpan.FromSeconds(6);
    private readonly IReadOnlyList<IPEndPoint> _nodes;
    private readonly Stopwatch _clock;
    private readonly HashSet<ushort> _awaitingRel = new();
    private readonly HashSet<ushort> _awaitingComp = new();
    private readonly object _gate = new();
    private readonly List<Receipt> _receipts = new();
    private readonly Dictionary<int, long> _acked = new();
    private RawMqttClient? _client;
    private DateTime _lastHeard;
    private bool _pinged;
    private bool _connectedOnce;
    private long? _downSinceMs;
    private (MqttPublishPacket Packet, int Seq)? _unanswered; // sent, neither acknowledged nor refused when the connection was lost

    public FaultClient(string id, ClientVersion version, MqttQoS qos, int homeNode, IReadOnlyList<IPEndPoint> nodes, Stopwatch clock)
    {
        Id = id;
        Version = version;
        QoS = qos;
        Node = homeNode;
        _nodes = nodes;
        _clock = clock;
    }

    public string Id { get; }

    public ClientVersion Version { get; }

    public MqttQoS QoS { get; }

    /// <summary>The node it is (or was last) connected to.</summary>
    public int Node { get; private set; }

    public bool Connected => _client is not null;

    public string Topic(string run) => $"f/{run}/{Id}";

    public List<string> Problems { get; } = new();

    /// <summary>Publishes refused (v5 0x80 ...) or left unanswered: allowed, never counted as acknowledged.</summary>
    public List<string> Refusals { get; } = new();

    public List<MqttReasonCode> DisconnectReasons { get; } = new();

    /// <summary>Every PUBLISH received: "seq/packet id/dup/node@ms", for the report of a duplicate.</summary>
    public List<(string Publisher, int Seq, string Trace)> PublishTrace { get; } = new();

    /// <summary>(run-clock ms, node) of every successful CONNECT.</summary>
    public List<(long AtMs, int Node)> Connections { get; } = new();

    /// <summary>Windows without a connection: (from ms, to ms; to is null while still down).</summary>
    public List<(long FromMs, long? ToMs)> Outages { get; } = new();

    public IReadOnlyList<Receipt> Receipts
    {
        get
        {
            lock (_gate)
            {
                return _receipts.ToList();
            }
        }
    }

    /// <summary>Acknowledged sequence numbers and when the acknowledgement came (run-clock ms).</summary>
    public IReadOnlyDictionary<int, long> Acked
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<int, long>(_acked);
            }
        }
    }

    public async Task StartAsync(string filter)
    {
        await ConnectAsync(TimeSpan.FromSeconds(30));
        if (filter.Length > 0)
        {
            var ack = await _client!.SubscribeAsync(1, filter, QoS);
            Assert.Equal((byte)QoS, (byte)ack.ReasonCodes[0]);
        }
    }

    /// <summary>Publishes "id|seq" one at a time, about 30 a second, until <paramref name="stop"/>.</summary>
    public async Task PublishLoopAsync(string run, CancellationToken stop)
    {
        var seq = 0;
        ushort packetId = 0;
        while (!stop.IsCancellationRequested)
        {
            if (_client is null && !await ReconnectAsync(stop))
            {
                return;
            }

            if (_unanswered is { } resend)
            {
                // [MQTT-4.4.0-1] a session-present reconnect resends the PUBLISH left unacknowledged, with DUP.
                _unanswered = null;
                await PublishOneAsync(resend.Packet with { Dup = true }, resend.Seq);
                continue;
            }

            seq++;
            packetId = (ushort)(packetId == ushort.MaxValue ? 1 : packetId + 1);
            await PublishOneAsync(new MqttPublishPacket
            {
                Topic = Topic(run), Payload = Encoding.UTF8.GetBytes($"{Id}|{seq}"), QoS = QoS, PacketId = packetId,
            }, seq);
            await Task.Delay(30, CancellationToken.None);
        }
    }

    public async Task ReceiveLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (_client is null && !await ReconnectAsync(stop))
            {
                return;
            }

            try
            {
                var packet = await NextAsync(TimeSpan.FromMilliseconds(500));
                if (packet is not null && !await HandleAsync(packet))
                {
                    await DropAsync();
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or TimeoutException)
            {
                await DropAsync();
            }
        }
    }

    public async Task CloseAsync()
    {
        if (_client is { } client)
        {
            try
            {
                await client.SendAsync(MqttDisconnectPacket.Normal);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
            }

            await client.DisposeAsync();
            _client = null;
        }
    }

    /// <summary>
    /// The next packet other than PINGRESP within <paramref name="wait"/>, or null when none came (a PINGREQ is sent
    /// after 2 s of silence). Throws <see cref="TimeoutException"/> when the connection is dead (6 s without any packet)
    /// and <see cref="IOException"/> when the broker closed it.
    /// </summary>
    private async Task<MqttPacket?> NextAsync(TimeSpan wait)
    {
        var until = DateTime.UtcNow + wait;
        while (true)
        {
            var silent = DateTime.UtcNow - _lastHeard;
            if (silent > DeadAfter)
            {
                throw new TimeoutException("keep alive: no packet from the broker");
            }

            if (silent > PingAfter && !_pinged)
            {
                _pinged = true;
                await _client!.SendAsync(MqttPingReqPacket.Instance);
            }

            var left = until - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return null;
            }

            MqttPacket? packet;
            try
            {
                packet = await _client!.ReceiveAsync(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500));
            }
            catch (TimeoutException)
            {
                continue;
            }

            if (packet is null)
            {
                throw new IOException("closed by the broker");
            }

            _lastHeard = DateTime.UtcNow;
            _pinged = false;
            if (packet is not MqttPingRespPacket)
            {
                return packet;
            }
        }
    }

    private async Task PublishOneAsync(MqttPublishPacket publish, int seq)
    {
        try
        {
            await _client!.SendAsync(publish);
            var deadline = DateTime.UtcNow + AckTimeout;
            while (DateTime.UtcNow < deadline)
            {
                var packet = await NextAsync(deadline - DateTime.UtcNow);
                switch (packet)
                {
                    case null:
                        continue;
                    case MqttPubAckPacket ack when ack.PacketId == publish.PacketId:
                    case MqttPubRecPacket rec when rec.PacketId == publish.PacketId:
                        var reason = ((MqttPublishAckPacket)packet).ReasonCode;
                        if (reason != MqttReasonCode.Success)
                        {
                            Refusals.Add($"seq {seq}: {packet.Type} {reason}");
                            return;
                        }

                        lock (_gate)
                        {
                            _acked[seq] = _clock.ElapsedMilliseconds;
                        }

                        if (packet is MqttPubRecPacket)
                        {
                            _awaitingComp.Add(publish.PacketId);
                            await _client.SendAsync(new MqttPubRelPacket { PacketId = publish.PacketId });
                        }

                        return;
                    case MqttPubCompPacket comp:
                        _awaitingComp.Remove(comp.PacketId);
                        break;
                    case MqttPubRecPacket late:
                        await _client.SendAsync(new MqttPubRelPacket { PacketId = late.PacketId });
                        break;
                    case MqttPubAckPacket:
                        break;
                    case MqttDisconnectPacket disconnect:
                        DisconnectReasons.Add(disconnect.ReasonCode);
                        _unanswered = (publish, seq);
                        await DropAsync();
                        return;
                    default:
                        Problems.Add($"{Id}: unexpected {packet.Type} while publishing");
                        break;
                }
            }

            Refusals.Add($"seq {seq}: no answer within {AckTimeout.TotalSeconds} s");
            _unanswered = (publish, seq);
            await DropAsync();
        }
        catch (Exception e) when (e is IOException or SocketException or TimeoutException or ObjectDisposedException)
        {
            _unanswered = (publish, seq);
            await DropAsync();
        }
    }

    private async Task<bool> HandleAsync(MqttPacket packet)
    {
        switch (packet)
        {
            case MqttPublishPacket p:
                var taken = p.QoS != MqttQoS.ExactlyOnce || _awaitingRel.Add(p.PacketId);
                var parts = Encoding.UTF8.GetString(p.Payload.Span).Split('|');
                var seq = int.Parse(parts[1], CultureInfo.InvariantCulture);
                lock (_gate)
                {
                    PublishTrace.Add((parts[0], seq,
                        $"id {p.PacketId}{(p.Dup ? " dup" : "")} n{Node}@{_clock.ElapsedMilliseconds / 1000.0:F1}{(taken ? "" : " (known id)")}"));
                    if (taken)
                    {
                        _receipts.Add(new Receipt(parts[0], seq, _clock.ElapsedMilliseconds));
                    }
                }

                if (p.QoS == MqttQoS.AtLeastOnce)
                {
                    await _client!.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
                }
                else if (p.QoS == MqttQoS.ExactlyOnce)
                {
                    await _client!.SendAsync(new MqttPubRecPacket { PacketId = p.PacketId });
                }

                return true;
            case MqttPubRelPacket rel:
                _awaitingRel.Remove(rel.PacketId);
                await _client!.SendAsync(new MqttPubCompPacket { PacketId = rel.PacketId });
                return true;
            case MqttDisconnectPacket disconnect:
                DisconnectReasons.Add(disconnect.ReasonCode);
                return false;
            default:
                Problems.Add($"{Id}: unexpected {packet.Type} while receiving");
                return true;
        }
    }

    private async Task DropAsync()
    {
        if (_client is { } client)
        {
            _client = null;
            _downSinceMs = _clock.ElapsedMilliseconds;
            lock (_gate)
            {
                Outages.Add((_downSinceMs.Value, null));
            }

            await client.DisposeAsync();
        }
    }

    /// <summary>Tries the next nodes in turn until a CONNACK with the session present (bounded: 120 s).</summary>
    private async Task<bool> ReconnectAsync(CancellationToken stop)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!stop.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            Node = Node % _nodes.Count + 1;
            try
            {
                await ConnectAsync(TimeSpan.FromSeconds(3));
                foreach (var id in _awaitingComp)
                {
                    await _client!.SendAsync(new MqttPubRelPacket { PacketId = id }); // [MQTT-4.4.0-1]
                }

                return true;
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException or InvalidOperationException or Xunit.Sdk.XunitException)
            {
                if (_client is { } half)
                {
                    _client = null;
                    await half.DisposeAsync();
                }

                await Task.Delay(200, CancellationToken.None);
            }
        }

        if (!stop.IsCancellationRequested)
        {
            Problems.Add($"{Id}: could not reconnect to any node within 120 s");
        }

        return false;
    }

    private async Task ConnectAsync(TimeSpan timeout)
    {
        var node = _nodes[Node - 1];
        var client = await RawMqttClient.OpenAsync(node.Address, node.Port, Version).WaitAsync(timeout);
        MqttConnAckPacket connAck;
        try
        {
            await client.SendAsync(new MqttConnectPacket
            {
                ProtocolVersion = client.Version, ClientId = Id, CleanStart = !_connectedOnce && Version == ClientVersion.V500,
                KeepAlive = 10, SessionExpiryInterval = Version == ClientVersion.V500 ? 600u : 0,
            });
            connAck = await client.ExpectAsync<MqttConnAckPacket>(timeout);
        }
        catch
        {
            await client.DisposeAsync(); // a late CONNACK on this socket must not take the session over later
            throw;
        }

        if (connAck.ReasonCode != 0)
        {
            await client.DisposeAsync();
            throw new InvalidOperationException($"{Id}: CONNACK 0x{connAck.ReasonCode:X2} from node {Node}");
        }

        if (_connectedOnce && !connAck.SessionPresent)
        {
            Problems.Add($"{Id}: reconnected to node {Node} without its session (session present 0)");
            _unanswered = null; // a new session: nothing to resend [MQTT-4.4.0-1]
            _awaitingComp.Clear();
        }

        _client = client;
        _lastHeard = DateTime.UtcNow;
        _pinged = false;
        _connectedOnce = true;
        var now = _clock.ElapsedMilliseconds;
        lock (_gate)
        {
            Connections.Add((now, Node));
            if (Outages.Count > 0 && Outages[^1].ToMs is null)
            {
                Outages[^1] = (Outages[^1].FromMs, now);
            }
        }
    }
}
