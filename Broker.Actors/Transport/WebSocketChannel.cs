using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using Akka.Event;
using DotNetty.Buffers;
using DotNetty.Transport.Channels;

namespace Broker.Transport;

/// <summary>
/// A DotNetty channel whose socket is an accepted <see cref="WebSocket"/> (Kestrel's RFC 6455 implementation: the
/// handshake, masking, fragmentation, ping/pong and the close handshake are Kestrel's). It lets a WebSocket client
/// go through exactly the pipeline of a TCP client (<c>MqttDecoderHandler → ClientChannelHandler</c>,
/// which also encodes) and the same <see cref="Sessions.ClientConnectionActor"/>, which sees an ordinary
/// <see cref="IChannel"/>: AutoRead, writability water marks, the event loop and Close all behave as on TCP.
/// <para>
/// "MQTT Control Packets MUST be sent in WebSocket binary data frames"; "a single WebSocket data frame can contain
/// multiple or partial MQTT Control Packets" (MQTT v5.0 section 6). Inbound binary payloads are passed on as a plain
/// byte stream, so the decoder frames packets across and within WebSocket frames; outbound, the bytes flushed
/// together go out as one binary message.
/// </para>
/// <code>
///   Kestrel WebSocket ──ReceiveAsync──► (event loop) FireChannelRead(bytes) ──► decoder ──► actor
///          ▲                                   one receive at a time, only while a read is requested (AutoRead)
///          └──SendAsync◄── DoWrite: flushed buffers copied into one message; one send at a time, the rest waits
///                          in the outbound buffer (so writability reflects a slow reader, as on TCP)
/// </code>
/// Close codes: a text frame closes with 1003 (unsupported data), a message over the size limit with 1009 (too
/// big), a protocol error is answered by Kestrel with 1002; the broker's own close is 1000.
/// </summary>
internal sealed class WebSocketChannel : AbstractChannel
{
    private const int ReceiveChunk = 16 * 1024;
    private const int SendBatchBytes = 64 * 1024;
    private static readonly ChannelMetadata ChannelMetadata = new(false, 16);

    private readonly WebSocket _socket;
    private readonly EndPoint _local;
    private readonly EndPoint _remote;
    private readonly int _maxMessageSize;
    private readonly ILoggingAdapter _log;
    private readonly byte[] _receiveBuffer = new byte[ReceiveChunk];
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _open = true;
    private bool _receiving;
    private bool _sending;
    private Task _receive = Task.CompletedTask;
    private ChannelOutboundBuffer? _outbound;
    private long _messageBytes;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;
    private string _closeReason = "";

    public WebSocketChannel(WebSocket socket, EndPoint local, EndPoint remote, int maxMessageSize, ILoggingAdapter log)
        : base(null)
    {
        _socket = socket;
        _local = local;
        _remote = remote;
        _maxMessageSize = maxMessageSize;
        _log = log;
        Configuration = new DefaultChannelConfiguration(this)
        {
            Allocator = PooledByteBufferAllocator.Default,
            // As on the TCP listener: past 256 KB unsent the channel is unwritable and QoS 0 to it is dropped.
            WriteBufferHighWaterMark = 256 * 1024,
            WriteBufferLowWaterMark = 128 * 1024,
        };
    }

    /// <summary>Completes when the WebSocket is closed and its resources released (the HTTP request may end).</summary>
    public Task Ended => _ended.Task;

    public override IChannelConfiguration Configuration { get; }

    public override bool Open => _open;

    public override bool Active => _open;

    public override ChannelMetadata Metadata => ChannelMetadata;

    protected override EndPoint LocalAddressInternal => _local;

    protected override EndPoint RemoteAddressInternal => _remote;

    protected override IChannelUnsafe NewUnsafe() => new WebSocketUnsafe(this);

    protected override bool IsCompatible(IEventLoop eventLoop) => true;

    protected override void DoBind(EndPoint localAddress) => throw new NotSupportedException("an accepted WebSocket is bound already");

    protected override void DoDisconnect() => DoClose();

    protected override void DoClose()
    {
        if (!_open)
        {
            return;
        }

        _open = false;
        // What was flushed while a send was under way (e.g. the DISCONNECT written just before the close) still goes
        // out, before the close frame: the outbound buffer would otherwise fail it.
        var length = 0;
        var last = _outbound is { } outbound ? TakeFlushed(outbound, int.MaxValue, out length) : null;
        _ = CloseSocketAsync(last, length, _closeStatus, _closeReason, _receive);
    }

    protected override void DoBeginRead()
    {
        if (_receiving || !_open)
        {
            return;
        }

        _receiving = true;
        _receive = ReceiveAsync();
    }

    private async Task ReceiveAsync()
    {
        ValueWebSocketReceiveResult result = default;
        Exception? error = null;
        try
        {
            result = await _socket.ReceiveAsync(_receiveBuffer.AsMemory(), _abort.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }

        RunOnEventLoop(() => OnReceived(result, error));
    }

    private void RunOnEventLoop(Action action)
    {
        try
        {
            EventLoop.Execute(action);
        }
        catch (DotNetty.Common.Concurrency.RejectedExecutionException)
        {
            // The event loops are shutting down with the broker; the socket is closed with them.
        }
    }

    private void OnReceived(ValueWebSocketReceiveResult result, Exception? error)
    {
        _receiving = false;
        if (!_open)
        {
            return;
        }

        if (error is not null)
        {
            // Kestrel has already answered a protocol violation (bad opcode, unmasked frame, reserved bits, invalid
            // close frame) with close 1002; a reset connection has nobody to answer.
            if (error is WebSocketException { WebSocketErrorCode: not WebSocketError.ConnectionClosedPrematurely })
            {
                _log.Warning("WebSocket {0}: malformed WebSocket input, closing: {1}", _remote, error.Message);
            }

            CloseNow(WebSocketCloseStatus.ProtocolError, "");
            return;
        }

        switch (result.MessageType)
        {
            case WebSocketMessageType.Close:
                // The client's close handshake: Kestrel answers it when we close our side.
                CloseNow(WebSocketCloseStatus.NormalClosure, "");
                return;
            case WebSocketMessageType.Text:
                // [MQTT-6.0.0-1] "If any other type of data frame is received the recipient MUST close the Network Connection."
                _log.Warning("WebSocket {0}: text frame received (MQTT needs binary frames), closing with 1003", _remote);
                CloseNow(WebSocketCloseStatus.InvalidMessageType, "MQTT needs binary frames");
                return;
        }

        _messageBytes += result.Count;
        if (_messageBytes > _maxMessageSize)
        {
            _log.Warning("WebSocket {0}: message over Mqtt:WebSocket:MaxMessageSize ({1} bytes), closing with 1009", _remote, _maxMessageSize);
            CloseNow(WebSocketCloseStatus.MessageTooBig, "message too big");
            return;
        }

        if (result.EndOfMessage)
        {
            _messageBytes = 0;
        }

        if (result.Count > 0)
        {
            var buffer = Configuration.Allocator.Buffer(result.Count);
            buffer.WriteBytes(_receiveBuffer, 0, result.Count);
            Pipeline.FireChannelRead(buffer);
        }

        // The pipeline's head asks for the next read here when AutoRead is on (DoBeginRead); when the connection
        // actor or the backlog has turned AutoRead off, reading waits until it is turned on again.
        Pipeline.FireChannelReadComplete();
    }

    /// <summary>Closes the channel (pipeline and actor are told) with a WebSocket close code for the client.</summary>
    private void CloseNow(WebSocketCloseStatus status, string reason)
    {
        _closeStatus = status;
        _closeReason = reason;
        Unsafe.CloseAsync();
    }

    protected override void DoWrite(ChannelOutboundBuffer input)
    {
        _outbound = input;
        if (_sending)
        {
            return; // the send under way flushes again when it completes
        }

        if (TakeFlushed(input, SendBatchBytes, out var length) is { } message)
        {
            _sending = true;
            _ = SendAsync(message, length);
        }
    }

    /// <summary>Copies flushed buffers (up to about <paramref name="limit"/> bytes) into one pooled array and removes them.</summary>
    private static byte[]? TakeFlushed(ChannelOutboundBuffer input, int limit, out int length)
    {
        byte[]? message = null;
        length = 0;
        while (input.Current is { } current)
        {
            if (current is not IByteBuffer buffer)
            {
                input.Remove(new NotSupportedException($"WebSocketChannel writes IByteBuffer only, not {current.GetType().Name}"));
                continue;
            }

            var readable = buffer.ReadableBytes;
            if (length > 0 && length + readable > limit)
            {
                break;
            }

            if (message is null || message.Length < length + readable)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(length + readable, 4096));
                if (message is not null)
                {
                    message.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(message);
                }

                message = bigger;
            }

            buffer.GetBytes(buffer.ReaderIndex, message, length, readable);
            length += readable;
            input.Remove();
        }

        return message;
    }

    private async Task SendAsync(byte[] message, int length)
    {
        Exception? error = null;
        try
        {
            await _socket.SendAsync(message.AsMemory(0, length), WebSocketMessageType.Binary, true, _abort.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(message);
        }

        RunOnEventLoop(() =>
        {
            _sending = false;
            if (error is not null)
            {
                if (_open)
                {
                    _log.Debug("WebSocket {0}: send failed: {1}", _remote, error.Message);
                    CloseNow(WebSocketCloseStatus.EndpointUnavailable, "");
                }

                return;
            }

            ((WebSocketUnsafe)Unsafe).FlushPending();
        });
    }

    /// <summary>
    /// Sends the close frame and waits (briefly) for the client's, reading and dropping what it still sends, so that
    /// the TCP connection ends with FIN rather than a reset that could destroy the close frame before it is read.
    /// </summary>
    private async Task CloseSocketAsync(byte[]? last, int length, WebSocketCloseStatus status, string reason, Task pendingReceive)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            if (last is not null && _socket.State == WebSocketState.Open)
            {
                await _socket.SendAsync(last.AsMemory(0, length), WebSocketMessageType.Binary, true, timeout.Token).ConfigureAwait(false);
            }

            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(status, reason, timeout.Token).ConfigureAwait(false);
            }

            await pendingReceive.WaitAsync(timeout.Token).ConfigureAwait(false);
            var scratch = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                while (_socket.State == WebSocketState.CloseSent)
                {
                    await _socket.ReceiveAsync(scratch.AsMemory(), timeout.Token).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException or TimeoutException)
        {
            // The peer is gone or does not answer; the socket is aborted below.
        }
        finally
        {
            if (last is not null)
            {
                ArrayPool<byte>.Shared.Return(last);
            }

            _abort.Cancel();
            if (_socket.State != WebSocketState.Closed)
            {
                _socket.Abort();
            }

            _socket.Dispose();
            _abort.Dispose();
            _ended.TrySetResult();
        }
    }

    private sealed class WebSocketUnsafe : AbstractUnsafe
    {
        public WebSocketUnsafe(WebSocketChannel channel)
            : base(channel)
        {
        }

        public override Task ConnectAsync(EndPoint remoteAddress, EndPoint localAddress) =>
            Task.FromException(new NotSupportedException("an accepted WebSocket is connected already"));

        /// <summary>Writes what was flushed while the previous send was under way.</summary>
        public void FlushPending() => Flush0();
    }
}
