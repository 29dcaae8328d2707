using System.Buffers;
using Broker.Protocol;
using Broker.Protocol.Codec;
using Broker.Protocol.Packets;

namespace Broker.LoadTests.Runner;

/// <summary>
/// One virtual client's connection: a <see cref="RawMqttConnection"/> with one reader loop that acknowledges what
/// arrives (PUBACK for QoS 1, PUBREC/PUBCOMP for QoS 2, PUBREL for our own QoS 2), completes our outbound QoS 1/2
/// messages, and hands received PUBLISH packets to <see cref="OnPublish"/>. Writes are serialized by a lock and
/// batched: <see cref="PublishBatchAsync"/> encodes many PUBLISH frames into one buffer and one socket write.
/// Outbound QoS 1/2 messages are bounded by a window of unacknowledged ones.
/// </summary>
public sealed class LoadClient : IAsyncDisposable
{
    private readonly RawMqttConnection _connection;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _window;
    private readonly long[] _inflightSequence = new long[65536];
    private readonly PublisherRecord?[] _inflightPublisher = new PublisherRecord?[65536];
    private readonly CancellationTokenSource _closed = new();
    private readonly RunMetrics? _metrics;
    private Task _reader = Task.CompletedTask;
    private int _nextPacketId;
    private int _inflight;

    private LoadClient(RawMqttConnection connection, int window, RunMetrics? metrics, string clientId, string target)
    {
        _connection = connection;
        _window = new SemaphoreSlim(window, window);
        _metrics = metrics;
        ClientId = clientId;
        Target = target;
    }

    public string ClientId { get; }

    public string Target { get; }

    public bool SessionPresent => _connection.SessionPresent;

    public MqttProtocolVersion Version => _connection.Version;

    /// <summary>Called on the reader loop for every PUBLISH received; return packets to send back (replies), or null.</summary>
    public Func<MqttPublishPacket, IEnumerable<MqttPacket>?>? OnPublish { get; set; }

    /// <summary>Cancelled when the connection ends (closed by either side).</summary>
    public CancellationToken Closed => _closed.Token;

    public int Inflight => Volatile.Read(ref _inflight);

    public static async Task<LoadClient> ConnectAsync(Target target, string clientId, ClientSettings settings, RunMetrics? metrics,
        CancellationToken ct, Func<MqttPublishPacket, IEnumerable<MqttPacket>?>? onPublish = null)
    {
        // A broker that accepts the socket but never answers CONNECT (a node waiting for a dead peer) must not hold
        // the client forever: like a real client, give up after ConnectTimeout.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(settings.ConnectTimeout);
        RawMqttConnection connection;
        try
        {
            connection = await RawMqttConnection.ConnectAsync(target.Host, target.Port, clientId, settings.Version,
                settings.CleanStart, timeout.Token, settings.SessionExpiry, settings.ReadBufferSize);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{clientId}: no CONNACK from {target} within {settings.ConnectTimeout.TotalSeconds:0} s");
        }

        var client = new LoadClient(connection, settings.Window, metrics, clientId, target.ToString()) { OnPublish = onPublish };
        client._reader = Task.Run(client.ReadLoopAsync, CancellationToken.None);
        return client;
    }

    public async Task<MqttSubAckPacket> SubscribeAsync(string filter, MqttQoS qos, CancellationToken ct)
    {
        var ack = new TaskCompletionSource<MqttSubAckPacket>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pendingSubAck = ack;
        await SendAsync(new MqttSubscribePacket
        {
            PacketId = 1, Subscriptions = [new MqttTopicSubscription { TopicFilter = filter, QoS = qos }],
        }, ct);
        using var reg = ct.Register(() => ack.TrySetCanceled());
        using var closed = Closed.Register(() => ack.TrySetException(new IOException($"{ClientId}: connection closed before SUBACK")));
        var subAck = await ack.Task;
        if (subAck.ReasonCodes.Any(c => (byte)c >= 0x80))
        {
            throw new InvalidOperationException($"{ClientId}: SUBSCRIBE {filter} refused: {string.Join(",", subAck.ReasonCodes)}");
        }

        return subAck;
    }

    private volatile TaskCompletionSource<MqttSubAckPacket>? _pendingSubAck;

    /// <summary>
    /// Publishes <paramref name="count"/> messages from <paramref name="publisher"/> on one topic in one write. For
    /// QoS 1/2 each message first takes a slot of the window (waits while the window is full).
    /// </summary>
    public async Task PublishBatchAsync(PublisherRecord publisher, string topic, int count, int payloadSize, bool retain,
        CancellationToken ct, MqttMessageProperties? properties = null, Func<long, string>? topicOf = null)
    {
        var packets = new List<MqttPacket>(count);
        var sequences = new List<long>(count);
        for (var i = 0; i < count; i++)
        {
            ushort packetId = 0;
            if (publisher.QoS != MqttQoS.AtMostOnce)
            {
                if (!_window.Wait(0))
                {
                    // The window is full: send what is built so far (its acks free the window), then wait.
                    await FlushAsync(publisher, packets, sequences, ct);
                    await UntilOpenAsync(_window.WaitAsync, ct);
                }
            }

            var seq = publisher.NextSequence();
            if (publisher.QoS != MqttQoS.AtMostOnce)
            {
                packetId = AllocatePacketId(publisher, seq);
            }

            sequences.Add(seq);
            packets.Add(new MqttPublishPacket
            {
                Topic = topicOf?.Invoke(seq) ?? topic, QoS = publisher.QoS, Retain = retain, PacketId = packetId,
                Payload = Payload.Create(payloadSize, publisher.Id, seq), Properties = properties ?? MqttMessageProperties.Empty,
            });
        }

        await FlushAsync(publisher, packets, sequences, ct);
    }

    private async Task FlushAsync(PublisherRecord publisher, List<MqttPacket> packets, List<long> sequences, CancellationToken ct)
    {
        if (packets.Count == 0)
        {
            return;
        }

        // Sent is recorded before the write: a reply or an ack can arrive before WriteAsync returns.
        foreach (var seq in sequences)
        {
            _metrics?.OnSent(publisher, seq);
        }

        await WritePacketsAsync(packets, ct);
        packets.Clear();
        sequences.Clear();
    }

    public Task SendAsync(MqttPacket packet, CancellationToken ct) => WritePacketsAsync([packet], ct);

    /// <summary>Takes a packet id for an outbound QoS 1/2 message whose window slot is already held.</summary>
    private ushort AllocatePacketId(PublisherRecord publisher, long seq)
    {
        lock (_inflightPublisher)
        {
            while (true)
            {
                _nextPacketId = _nextPacketId >= ushort.MaxValue ? 1 : _nextPacketId + 1;
                if (_inflightPublisher[_nextPacketId] is null)
                {
                    _inflightPublisher[_nextPacketId] = publisher;
                    _inflightSequence[_nextPacketId] = seq;
                    Interlocked.Increment(ref _inflight);
                    return (ushort)_nextPacketId;
                }
            }
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<ushort, TaskCompletionSource<bool>> _ackWaiters = new();

    /// <summary>
    /// One QoS 1/2 message from <paramref name="publisher"/>, awaited until the broker answers it; true when it was
    /// acknowledged, false when refused (a failure reason code). The caller times it: the PUBACK latency.
    /// </summary>
    public async Task<bool> PublishAwaitAckAsync(PublisherRecord publisher, string topic, int payloadSize, CancellationToken ct)
    {
        await UntilOpenAsync(_window.WaitAsync, ct);
        var seq = publisher.NextSequence();
        var packetId = AllocatePacketId(publisher, seq);
        var answered = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ackWaiters[packetId] = answered;
        await FlushAsync(publisher, [new MqttPublishPacket
        {
            Topic = topic, QoS = publisher.QoS, PacketId = packetId, Payload = Payload.Create(payloadSize, publisher.Id, seq),
        }], [seq], ct);
        await UntilOpenAsync(answered.Task.WaitAsync, ct);
        return answered.Task.Result;
    }

    /// <summary>
    /// Waits for the window or an acknowledgement, but not on a connection the broker closed (a 3.1.1 publisher
    /// refused by a full queue, or not answered in time, is closed unacknowledged): that throws, so that the iteration
    /// fails and the run goes on instead of waiting for its time limit.
    /// </summary>
    private async Task UntilOpenAsync(Func<CancellationToken, Task> wait, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _closed.Token);
        try
        {
            await wait(linked.Token);
        }
        catch (OperationCanceledException) when (_closed.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new IOException($"{ClientId}: connection to {Target} closed while waiting for acknowledgements");
        }
    }

    private static readonly PublisherRecord Untracked = new(-1, MqttQoS.AtLeastOnce);

    /// <summary>
    /// A QoS 1 PUBLISH outside the window and the ledger (a backend's reply, sent from the reader loop, which must not
    /// wait for the window it frees itself); null when 65,535 are already unacknowledged.
    /// </summary>
    public MqttPublishPacket? UntrackedPublish(string topic, ReadOnlyMemory<byte> payload, MqttQoS qos, MqttMessageProperties properties)
    {
        ushort packetId = 0;
        if (qos != MqttQoS.AtMostOnce)
        {
            lock (_inflightPublisher)
            {
                for (var tries = 0; tries < ushort.MaxValue && packetId == 0; tries++)
                {
                    _nextPacketId = _nextPacketId >= ushort.MaxValue ? 1 : _nextPacketId + 1;
                    if (_inflightPublisher[_nextPacketId] is null)
                    {
                        _inflightPublisher[_nextPacketId] = Untracked;
                        packetId = (ushort)_nextPacketId;
                    }
                }
            }

            if (packetId == 0)
            {
                return null;
            }
        }

        return new MqttPublishPacket { Topic = topic, Payload = payload, QoS = qos, PacketId = packetId, Properties = properties };
    }

    /// <summary>A publish answered; <paramref name="refused"/> (a failure reason code) counts it as not acknowledged.</summary>
    private void CompleteOutbound(ushort packetId, bool refused = false)
    {
        PublisherRecord? publisher;
        long seq;
        lock (_inflightPublisher)
        {
            publisher = _inflightPublisher[packetId];
            seq = _inflightSequence[packetId];
            _inflightPublisher[packetId] = null;
        }

        if (ReferenceEquals(publisher, Untracked))
        {
            return;
        }

        if (publisher is not null)
        {
            Interlocked.Decrement(ref _inflight);
            if (_ackWaiters.TryRemove(packetId, out var waiter))
            {
                waiter.TrySetResult(!refused);
            }

            if (refused)
            {
                _metrics?.OnRefused();
            }
            else
            {
                _metrics?.OnAcked(publisher, seq);
            }

            _window.Release();
        }
    }

    private async Task WritePacketsAsync(IReadOnlyList<MqttPacket> packets, CancellationToken ct)
    {
        var size = 0;
        foreach (var p in packets)
        {
            size += MqttPacketEncoder.GetSize(p, Version);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var written = 0;
            foreach (var p in packets)
            {
                written += MqttPacketEncoder.Encode(p, Version, buffer.AsSpan(written));
            }

            await _writeLock.WaitAsync(ct);
            try
            {
                await _connection.SendRawAsync(buffer.AsMemory(0, written), ct);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task ReadLoopAsync()
    {
        var replies = new List<MqttPacket>();
        try
        {
            while (await _connection.ReceiveBatchAsync(p => Handle(p, replies), _closed.Token))
            {
                if (replies.Count > 0)
                {
                    await WritePacketsAsync(replies, _closed.Token);
                    replies.Clear();
                }
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        catch (Exception e)
        {
            _metrics?.OnError($"{ClientId}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            if (!_disposing)
            {
                _metrics?.OnError($"{ClientId}: connection to {Target} closed by the broker or the network");
            }

            _closed.Cancel();
        }
    }

    private volatile bool _disposing;

    private void Handle(MqttPacket packet, List<MqttPacket> replies)
    {
        switch (packet)
        {
            case MqttPublishPacket pub:
                if (pub.QoS == MqttQoS.AtLeastOnce)
                {
                    replies.Add(new MqttPubAckPacket { PacketId = pub.PacketId });
                }
                else if (pub.QoS == MqttQoS.ExactlyOnce)
                {
                    replies.Add(new MqttPubRecPacket { PacketId = pub.PacketId });
                }

                if (OnPublish?.Invoke(pub) is { } extra)
                {
                    replies.AddRange(extra);
                }

                break;
            case MqttPubAckPacket ack:
                CompleteOutbound(ack.PacketId, refused: (byte)ack.ReasonCode >= 0x80);
                break;
            case MqttPubRecPacket rec when (byte)rec.ReasonCode >= 0x80:
                CompleteOutbound(rec.PacketId, refused: true); // the flow ends here (MQTT-v5.0 4.3.3)
                break;
            case MqttPubRecPacket rec:
                replies.Add(new MqttPubRelPacket { PacketId = rec.PacketId });
                break;
            case MqttPubCompPacket comp:
                CompleteOutbound(comp.PacketId);
                break;
            case MqttPubRelPacket rel:
                replies.Add(new MqttPubCompPacket { PacketId = rel.PacketId });
                break;
            case MqttSubAckPacket subAck:
                _pendingSubAck?.TrySetResult(subAck);
                break;
            case MqttDisconnectPacket disconnect:
                _metrics?.OnError($"{ClientId}: DISCONNECT from the broker, reason {disconnect}");
                break;
        }
    }

    /// <summary>Waits (bounded) until every outbound QoS 1/2 message is acknowledged.</summary>
    public async Task<bool> WaitForAcksAsync(TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (Inflight > 0 && !Closed.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        return Inflight == 0;
    }

    /// <summary>Drops the TCP connection without DISCONNECT.</summary>
    public async Task AbortAsync()
    {
        _disposing = true;
        _connection.Abort();
        await _closed.CancelAsync();
        await _reader.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        _disposing = true;
        await _writeLock.WaitAsync(TimeSpan.FromSeconds(5));
        await _connection.DisposeAsync();
        await _closed.CancelAsync();
        await _reader.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }
}
