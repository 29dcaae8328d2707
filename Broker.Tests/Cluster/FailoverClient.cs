using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Cluster;

/// <summary>A message as one subscriber first saw it: publisher, sequence number, milliseconds on the run clock.</summary>
public readonly record struct Receipt(string Publisher, int Seq, long AtMs);

/// <summary>
/// One persistent-session client of <see cref="FailoverLoad"/>, a publisher or a subscriber over the raw client, that
/// keeps going across a node's death: when its connection ends it connects again (same client id, clean start off) to
/// the next node in turn, and requires the broker to answer "session present". It records what the checks need:
/// a publisher the sequence numbers acknowledged (PUBACK / PUBREC with success), a subscriber each receipt; and the
/// DISCONNECT reason codes the broker sent. QoS 2 is received as the spec says a receiver may (method B,
/// [MQTT-4.3.3]): the message is taken on its first PUBLISH, the packet id is remembered until PUBREL, and a
/// retransmission with a remembered id is answered but not taken again; that memory is client session state and
/// survives reconnects.
/// </summary>
public sealed class FailoverClient
{
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(30);
    private readonly IReadOnlyList<int> _ports;
    private readonly Stopwatch _clock;
    private readonly HashSet<ushort> _awaitingRel = new(); // subscriber: QoS 2 ids taken, PUBREL not yet seen
    private readonly HashSet<ushort> _awaitingComp = new(); // publisher: QoS 2 ids released, PUBCOMP not yet seen
    private readonly object _gate = new();
    private readonly List<Receipt> _receipts = new();
    private readonly HashSet<int> _acked = new();
    private RawMqttClient? _client;
    private int _node;
    private bool _connectedOnce;

    public FailoverClient(string id, ClientVersion version, MqttQoS qos, int homeNode, IReadOnlyList<int> ports, Stopwatch clock)
    {
        Id = id;
        Version = version;
        QoS = qos;
        HomeNode = homeNode;
        _node = homeNode;
        _ports = ports;
        _clock = clock;
    }

    public string Id { get; }

    public ClientVersion Version { get; }

    public MqttQoS QoS { get; }

    public int HomeNode { get; }

    public string Topic(string run) => $"fo/{run}/{Id}";

    /// <summary>Reconnects after the first connection, each noted "(node, ms)".</summary>
    public List<string> Reconnects { get; } = new();

    public List<MqttReasonCode> DisconnectReasons { get; } = new();

    /// <summary>Problems that make the run fail (a session not present after reconnect, an unexpected packet).</summary>
    public List<string> Problems { get; } = new();

    /// <summary>Publishes the broker refused (v5 0x80) or left unanswered: allowed, never counted as acknowledged.</summary>
    public List<string> Refusals { get; } = new();

    /// <summary>Publisher: the first sequence number sent after the fault, and when its first acknowledgement came.</summary>
    public int? FirstSeqAfterFault { get; private set; }

    public long? ResumedAtMs { get; private set; }

    /// <summary>Publisher: the last sequence number sent so far (one publish is outstanding at a time).</summary>
    public int LastSentSeq { get; private set; }

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

    public IReadOnlySet<int> Acked
    {
        get
        {
            lock (_gate)
            {
                return _acked.ToHashSet();
            }
        }
    }

    public int AckedCount
    {
        get
        {
            lock (_gate)
            {
                return _acked.Count;
            }
        }
    }

    /// <summary>Connects to the home node and subscribes (subscribers) to every publisher's topic.</summary>
    public async Task StartAsync(string filter)
    {
        await ConnectAsync(TimeSpan.FromSeconds(30));
        if (filter.Length > 0)
        {
            var ack = await _client!.SubscribeAsync(1, filter, QoS);
            Assert.Equal((byte)QoS, (byte)ack.ReasonCodes[0]);
        }
    }

    /// <summary>
    /// Publishes "id|seq" one at a time, paced, until <paramref name="stop"/>; <paramref name="faultAtMs"/> gives the
    /// run-clock time of the fault once it happened.
    /// </summary>
    public async Task PublishLoopAsync(string run, Func<long?> faultAtMs, CancellationToken stop)
    {
        var seq = 0;
        ushort packetId = 0;
        while (!stop.IsCancellationRequested)
        {
            if (_client is null && !await TryReconnectAsync(stop))
            {
                return;
            }

            seq++;
            LastSentSeq = seq;
            packetId = (ushort)(packetId == ushort.MaxValue ? 1 : packetId + 1);
            if (faultAtMs() is not null && FirstSeqAfterFault is null)
            {
                FirstSeqAfterFault = seq;
            }

            var publish = new MqttPublishPacket
            {
                Topic = Topic(run), Payload = Encoding.UTF8.GetBytes($"{Id}|{seq}"), QoS = QoS, PacketId = packetId,
            };
            if (await PublishOneAsync(publish) && FirstSeqAfterFault is { } first && seq >= first && ResumedAtMs is null)
            {
                ResumedAtMs = _clock.ElapsedMilliseconds;
            }

            // Pacing: a steady stream of about 30 messages/s per publisher, not a flood the shared CPU cannot carry.
            await Task.Delay(30, CancellationToken.None);
        }
    }

    /// <summary>Receives and acknowledges until <paramref name="stop"/>, reconnecting whenever the connection ends.</summary>
    public async Task ReceiveLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (_client is null && !await TryReconnectAsync(stop))
            {
                return;
            }

            MqttPacket? packet;
            try
            {
                packet = await _client!.ReceiveAsync(TimeSpan.FromMilliseconds(500));
            }
            catch (TimeoutException)
            {
                continue;
            }

            if (packet is null || !await HandleAsync(packet))
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

    private async Task<bool> PublishOneAsync(MqttPublishPacket publish)
    {
        var seq = int.Parse(Encoding.UTF8.GetString(publish.Payload.Span).Split('|')[1], System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            await _client!.SendAsync(publish);
            var deadline = DateTime.UtcNow + AckTimeout;
            while (DateTime.UtcNow < deadline)
            {
                var packet = await _client.ReceiveAsync(deadline - DateTime.UtcNow);
                switch (packet)
                {
                    case null:
                        await DropAsync();
                        return false;
                    case MqttPubAckPacket ack when ack.PacketId == publish.PacketId:
                    case MqttPubRecPacket rec when rec.PacketId == publish.PacketId:
                        var ok = ((MqttPublishAckPacket)packet).ReasonCode == MqttReasonCode.Success;
                        if (!ok)
                        {
                            Refusals.Add($"{Id}: seq {seq} answered {packet.Type} {((MqttPublishAckPacket)packet).ReasonCode} (not counted as acknowledged)");
                            return false;
                        }

                        lock (_gate)
                        {
                            _acked.Add(seq);
                        }

                        if (packet is MqttPubRecPacket)
                        {
                            _awaitingComp.Add(publish.PacketId);
                            await _client.SendAsync(new MqttPubRelPacket { PacketId = publish.PacketId });
                        }

                        return true;
                    case MqttPubCompPacket comp:
                        _awaitingComp.Remove(comp.PacketId);
                        break;
                    case MqttPubRecPacket late:
                        // The answer to a publish given up on (not counted): release it as the protocol requires.
                        await _client.SendAsync(new MqttPubRelPacket { PacketId = late.PacketId });
                        break;
                    case MqttPubAckPacket:
                        break; // the answer to a publish given up on: not counted
                    case MqttDisconnectPacket disconnect:
                        DisconnectReasons.Add(disconnect.ReasonCode);
                        break;
                    default:
                        Problems.Add($"{Id}: unexpected {packet.Type} while publishing");
                        break;
                }
            }

            Refusals.Add($"{Id}: seq {seq} not acknowledged within {AckTimeout.TotalSeconds} s; reconnecting");
            await DropAsync();
            return false;
        }
        catch (Exception e) when (e is IOException or SocketException or TimeoutException or ObjectDisposedException)
        {
            await DropAsync();
            return false;
        }
    }

    private async Task<bool> HandleAsync(MqttPacket packet)
    {
        try
        {
            switch (packet)
            {
                case MqttPublishPacket p:
                    var taken = p.QoS != MqttQoS.ExactlyOnce || _awaitingRel.Add(p.PacketId);
                    if (taken)
                    {
                        var parts = Encoding.UTF8.GetString(p.Payload.Span).Split('|');
                        lock (_gate)
                        {
                            _receipts.Add(new Receipt(parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), _clock.ElapsedMilliseconds));
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
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private async Task DropAsync()
    {
        if (_client is { } client)
        {
            _client = null;
            await client.DisposeAsync();
        }
    }

    /// <summary>Tries the next nodes in turn (a dead one refuses at once) until a CONNACK with the session present.</summary>
    private async Task<bool> TryReconnectAsync(CancellationToken stop)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!stop.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            _node = _node % _ports.Count + 1;
            try
            {
                await ConnectAsync(TimeSpan.FromSeconds(10));
                Reconnects.Add($"(node {_node}, {_clock.ElapsedMilliseconds} ms)");
                if (QoS == MqttQoS.ExactlyOnce && _awaitingComp.Count > 0)
                {
                    // [MQTT-4.4.0-1]: on reconnect the sender resends PUBREL for every QoS 2 message it released.
                    foreach (var id in _awaitingComp)
                    {
                        await _client!.SendAsync(new MqttPubRelPacket { PacketId = id });
                    }
                }

                return true;
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException or InvalidOperationException or Xunit.Sdk.XunitException)
            {
                await DropAsync();
                await Task.Delay(100, CancellationToken.None); // retry pace while a node is being replaced
            }
        }

        Problems.Add($"{Id}: could not reconnect to any node within 90 s");
        return false;
    }

    private async Task ConnectAsync(TimeSpan timeout)
    {
        var port = _ports[_node - 1];
        var cleanStart = !_connectedOnce && Version == ClientVersion.V500;
        var client = await RawMqttClient.OpenAsync(port, Version).WaitAsync(timeout);
        MqttConnAckPacket connAck;
        try
        {
            await client.SendAsync(new MqttConnectPacket
            {
                ProtocolVersion = client.Version, ClientId = Id, CleanStart = cleanStart, KeepAlive = 0,
                SessionExpiryInterval = Version == ClientVersion.V500 ? 600u : 0,
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
            throw new InvalidOperationException($"{Id}: CONNACK 0x{connAck.ReasonCode:X2} from node {_node}");
        }

        if (_connectedOnce && !connAck.SessionPresent)
        {
            Problems.Add($"{Id}: reconnected to node {_node} without its session (session present 0)");
        }

        _client = client;
        _connectedOnce = true;
    }
}
