using System.Diagnostics;
using System.Text;
using Broker.Protocol;
using Broker.Protocol.Packets;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;
using static Broker.Tests.Durability.DurableClient;
using ClientVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Broker.Tests.Durability;

/// <summary>
/// PostgreSQL goes away in the middle of a stream of QoS 1 publishes and comes back. Publishes may fail or go
/// unanswered meanwhile, and the publisher behaves as an MQTT client does: when acknowledgements stop it drops the
/// connection, reconnects and sends its unacknowledged messages again with DUP (MQTT-4.4). What must hold: the broker
/// serves again once the database is back, and every message the publisher got a PUBACK for reaches the persistent
/// subscriber when it reconnects.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StorageOutageSpecs : IDisposable
{
    private const int Count = 400;
    private const int StopAfterAcks = 100;
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(5);

    private readonly ITestOutputHelper _output;
    private readonly PostgresServer _postgres;
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-outage-").FullName;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private BrokerNodeProcess? _node;

    public StorageOutageSpecs(ITestOutputHelper output, PostgresServer postgres)
    {
        _output = output;
        _postgres = postgres;
    }

    [Fact]
    public async Task Every_acknowledged_publish_should_reach_the_persistent_subscriber_across_a_database_outage()
    {
        var connectionString = await _postgres.CreateDatabaseAsync("outage_" + Guid.NewGuid().ToString("N")[..8]);
        _node = await BrokerNodeProcess.StartAsync(
            $"--Node:DataDir={_dataDir}", "--Storage:Provider=postgresql", $"--Storage:ConnectionString={connectionString}",
            "--Sessions:MaxQueuedMessages=5000");
        var run = Guid.NewGuid().ToString("N")[..8];
        var topic = $"outage/{run}";
        var subscriberId = $"outage-sub-{run}";

        var (subscriber, _) = await ConnectAsync(_node.MqttPort, ClientVersion.V311, subscriberId, cleanStart: false);
        await subscriber.SubscribeAsync(1, topic, MqttQoS.AtLeastOnce);
        await DisconnectAsync(subscriber);

        var publisher = new ReconnectingPublisher(_node.MqttPort, $"outage-pub-{run}", topic, Log);
        var outage = Task.CompletedTask;
        var outageStarted = false;
        var stats = await publisher.RunAsync(Count, TimeSpan.FromSeconds(120), acked =>
        {
            if (!outageStarted && acked >= StopAfterAcks)
            {
                outageStarted = true;
                outage = RunOutageAsync();
            }
        });
        await outage;

        Log($"publisher: {stats.Acked.Count} acknowledged, {stats.Rejected.Count} rejected with a reason code " +
            $"({string.Join(", ", stats.Rejected.Take(10))}), {stats.Unanswered} connections given up for lack of acks, " +
            $"{stats.Closed} closed by the broker, {stats.ConnectFailures} failed connects, {stats.Resent} resent with DUP");
        foreach (var line in _node.Problems().Take(40))
        {
            Log("broker: " + Trim(line));
        }

        Assert.True(outageStarted, "the stream never reached the point where the database is stopped");
        Assert.True(stats.Acked.Contains(Count - 1), $"the broker did not serve again after the database came back\n{_node.Process.Report()}");

        var (again, connAck) = await ConnectAsync(_node.MqttPort, ClientVersion.V311, subscriberId, cleanStart: false);
        await using (again)
        {
            Assert.True(connAck.SessionPresent, "subscriber's session lost");
            var received = await ReceiveUntilAsync(
                again, r => stats.Acked.IsSubsetOf(r.Select(m => Seq(m.Payload))), TimeSpan.FromSeconds(60));
            var seqs = received.Select(m => Seq(m.Payload)).ToList();
            Log($"subscriber: {received.Count} messages, {seqs.Distinct().Count()} distinct, {received.Count(m => m.Dup)} with DUP");
            Assert.Empty(stats.Acked.Except(seqs));
        }
    }

    public void Dispose()
    {
        _node?.Dispose();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task RunOutageAsync()
    {
        Log("stopping PostgreSQL");
        await _postgres.StopAsync();
        Log("PostgreSQL stopped");
        await Task.Delay(Outage);
        await _postgres.StartAsync();
        Log("PostgreSQL started again");
    }

    private void Log(string line) => _output.WriteLine($"{_clock.Elapsed.TotalSeconds,7:F2} s  {line}");

    private static string Trim(string line) => line.Length > 400 ? line[..400] + " ..." : line;
}

/// <summary>
/// A QoS 1 publisher that keeps at most a window of messages unacknowledged, reconnects when the broker closes the
/// connection or stops answering, and then resends its unacknowledged messages with DUP and their packet ids.
/// A PUBACK with an error reason (v5) means the broker refused the message: it is counted, not retried.
/// </summary>
internal sealed class ReconnectingPublisher(int port, string clientId, string topic, Action<string> log)
{
    private const int Window = 10;
    private static readonly TimeSpan AckPatience = TimeSpan.FromSeconds(5);
    private readonly Dictionary<ushort, (int Seq, DateTime SentAt)> _unacked = new();
    private RawMqttClient? _client;

    public sealed record Stats(HashSet<int> Acked, List<string> Rejected)
    {
        public int Unanswered { get; set; }

        public int Closed { get; set; }

        public int ConnectFailures { get; set; }

        public int Resent { get; set; }
    }

    public async Task<Stats> RunAsync(int count, TimeSpan timeout, Action<int> onAck)
    {
        var stats = new Stats(new HashSet<int>(), new List<string>());
        var deadline = DateTime.UtcNow + timeout;
        var next = 0;
        try
        {
            while ((next < count || _unacked.Count > 0) && DateTime.UtcNow < deadline)
            {
                if (_client is null && !await TryConnectAsync(stats))
                {
                    await Task.Delay(500);
                    continue;
                }

                if (next < count && _unacked.Count < Window)
                {
                    await SendAsync((ushort)(next + 1), next, dup: false);
                    next++;
                }

                MqttPacket? packet;
                try
                {
                    packet = await _client!.ReceiveAsync(TimeSpan.FromMilliseconds(10));
                }
                catch (TimeoutException)
                {
                    if (_unacked.Count > 0 && _unacked.Values.Min(u => u.SentAt) < DateTime.UtcNow - AckPatience)
                    {
                        stats.Unanswered++;
                        log($"no PUBACK for {AckPatience.TotalSeconds} s ({_unacked.Count} unacknowledged): reconnecting");
                        await DropAsync();
                    }

                    continue;
                }

                switch (packet)
                {
                    case null:
                        stats.Closed++;
                        log($"broker closed the connection ({_unacked.Count} unacknowledged)");
                        await DropAsync();
                        break;
                    case MqttPubAckPacket ack when _unacked.Remove(ack.PacketId, out var entry):
                        if (ack.ReasonCode == MqttReasonCode.Success)
                        {
                            stats.Acked.Add(entry.Seq);
                            onAck(stats.Acked.Count);
                        }
                        else
                        {
                            stats.Rejected.Add($"{entry.Seq}: {ack.ReasonCode}");
                        }

                        break;
                    case MqttPubAckPacket:
                        break; // a second PUBACK for a message sent twice
                    case MqttDisconnectPacket disconnect:
                        stats.Closed++;
                        log($"broker sent DISCONNECT {disconnect.ReasonCode}");
                        await DropAsync();
                        break;
                    default:
                        throw new InvalidOperationException($"unexpected {packet.Type} at the publisher");
                }
            }
        }
        finally
        {
            await DropAsync();
        }

        return stats;

        Task SendAsync(ushort packetId, int seq, bool dup)
        {
            _unacked[packetId] = (seq, DateTime.UtcNow);
            return _client!.SendAsync(new MqttPublishPacket
            {
                Topic = topic,
                Payload = Encoding.UTF8.GetBytes($"m-{seq:D5}"),
                QoS = MqttQoS.AtLeastOnce,
                PacketId = packetId,
                Dup = dup,
            });
        }

        async Task<bool> TryConnectAsync(Stats s)
        {
            try
            {
                // Longer than the broker's own 10 s attach timeout, so that its answer (CONNACK 0x88) is seen.
                var client = await RawMqttClient.OpenAsync(port, ClientVersion.V500);
                await client.SendAsync(new MqttConnectPacket { ProtocolVersion = client.Version, ClientId = clientId, CleanStart = true });
                var connAck = await client.ExpectAsync<MqttConnAckPacket>(TimeSpan.FromSeconds(15));
                if (connAck.ReasonCode != 0)
                {
                    s.ConnectFailures++;
                    log($"CONNACK 0x{connAck.ReasonCode:X2}");
                    await client.DisposeAsync();
                    return false;
                }

                _client = client;
                log($"connected; resending {_unacked.Count} unacknowledged with DUP");
                foreach (var (packetId, entry) in _unacked.ToList())
                {
                    s.Resent++;
                    await SendAsync(packetId, entry.Seq, dup: true);
                }

                return true;
            }
            catch (Exception e) when (e is TimeoutException or IOException or System.Net.Sockets.SocketException or Xunit.Sdk.XunitException)
            {
                s.ConnectFailures++;
                log($"connect failed: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                return false;
            }
        }
    }

    private async Task DropAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
            _client = null;
        }
    }
}
