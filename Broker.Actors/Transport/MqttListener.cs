using System.Net;
using Akka.Actor;
using Broker.Cluster;
using Broker.Security;
using DotNetty.Buffers;
using DotNetty.Transport.Bootstrapping;
using DotNetty.Transport.Channels;
using DotNetty.Transport.Channels.Sockets;

namespace Broker.Transport;

/// <summary>
/// The TCP listener: a DotNetty ServerBootstrap whose pipeline per client is
/// <c>MqttDecoderHandler → ClientChannelHandler</c> (which also encodes), with pooled buffers and Nagle off.
/// The TLS listener (Mqtt:Tls:Port) shares the event loops and puts DotNetty's <c>TlsHandler</c> in front.
/// </summary>
public sealed class MqttListener : IAsyncDisposable
{
    private readonly MultithreadEventLoopGroup _bossGroup = new(1);
    private readonly MultithreadEventLoopGroup _workerGroup = new(Math.Max(1, Environment.ProcessorCount));
    private IChannel? _serverChannel;
    private IChannel? _tlsChannel;

    static MqttListener()
    {
        // DotNetty samples one pooled buffer in 128 for leak tracking (level Simple) and records a stack trace for each:
        // in the fan-in load test that was ~10 % of the broker's CPU (stack walks plus a contended ConditionalWeakTable).
        // The codec copies out of and releases every buffer itself (MqttDecoderHandler); the environment variable
        // io.netty.leakDetection.level still turns tracking on for a diagnosis.
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("io.netty.leakDetection.level")))
        {
            DotNetty.Common.ResourceLeakDetector.Level = DotNetty.Common.ResourceLeakDetector.DetectionLevel.Disabled;
        }
    }

    /// <summary>The event loops of client channels, shared with the WebSocket listener's channels.</summary>
    internal IEventLoopGroup WorkerGroup => _workerGroup;

    public IPEndPoint? LocalEndPoint => _serverChannel?.LocalAddress as IPEndPoint;

    public IPEndPoint? TlsEndPoint => _tlsChannel?.LocalAddress as IPEndPoint;

    public async Task StartAsync(ActorSystem system, BrokerContext context, IPAddress address, int port)
    {
        _serverChannel = await BindAsync(Bootstrap(system, context, tls: null), "Mqtt:Port", address, port).ConfigureAwait(false);
    }

    /// <summary>Opens the MQTT-over-TLS listener next to the plain one.</summary>
    public async Task StartTlsAsync(ActorSystem system, BrokerContext context, IPAddress address, int port, TlsServerSetup tls)
    {
        _tlsChannel = await BindAsync(Bootstrap(system, context, tls), "Mqtt:Tls:Port", address, port).ConfigureAwait(false);
    }

    private static async Task<IChannel> BindAsync(ServerBootstrap bootstrap, string key, IPAddress address, int port)
    {
        try
        {
            return await bootstrap.BindAsync(address, port).ConfigureAwait(false);
        }
        catch (Exception e) when (ListenerPorts.IsAddressInUse(e))
        {
            throw new PortInUseException(key, address.ToString(), port, e);
        }
    }

    // One read-size predictor for all clients (its per-channel state lives in the handle each channel makes of it),
    // instead of one per channel, with the 16 reads per turn DotNetty gives each TCP channel's own.
    private static readonly AdaptiveRecvByteBufAllocator SharedReadSizes = new() { MaxMessagesPerRead = 16 };

    private ServerBootstrap Bootstrap(ActorSystem system, BrokerContext context, TlsServerSetup? tls)
    {
        var maxPacketSize = context.Options.Mqtt.MaxPacketSize;
        return new ServerBootstrap()
            .Group(_bossGroup, _workerGroup)
            .Channel<TcpServerSocketChannel>()
            .Option(ChannelOption.SoBacklog, 1024)
            // No SoReuseaddr: on Linux .NET makes it SO_REUSEPORT too, and a second broker could then share the port
            // (see ListenerPorts). A plain bind keeps SO_REUSEADDR, so a restart is not blocked by TIME_WAIT.
            .ChildOption(ChannelOption.TcpNodelay, true)
            // A client that stops reading makes its channel unwritable past 256 KB of unsent data; QoS 0 to it is then
            // dropped (and counted) instead of piling up in memory. QoS 1/2 are bounded by the in-flight window.
            .ChildOption(ChannelOption.WriteBufferHighWaterMark, 256 * 1024)
            .ChildOption(ChannelOption.WriteBufferLowWaterMark, 128 * 1024)
            .ChildOption(ChannelOption.Allocator, PooledByteBufferAllocator.Default)
            .ChildOption(ChannelOption.RcvbufAllocator, SharedReadSizes)
            .ChildHandler(new ActionChannelInitializer<ISocketChannel>(channel =>
            {
                var codec = new MqttCodecState();
                if (tls is not null)
                {
                    channel.Pipeline.AddLast("tls", tls.CreateHandler(channel));
                }

                channel.Pipeline.AddLast("decoder", new MqttDecoderHandler(codec, maxPacketSize));
                channel.Pipeline.AddLast("client", new ClientChannelHandler(system, context, codec));
            }));
    }

    /// <summary>Stops accepting; existing connections are closed by their actors.</summary>
    public async Task StopAcceptingAsync()
    {
        if (_serverChannel is not null)
        {
            await _serverChannel.CloseAsync().ConfigureAwait(false);
        }

        if (_tlsChannel is not null)
        {
            await _tlsChannel.CloseAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAcceptingAsync().ConfigureAwait(false);
        await Task.WhenAll(
            _bossGroup.ShutdownGracefullyAsync(TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1)),
            _workerGroup.ShutdownGracefullyAsync(TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1))).ConfigureAwait(false);
    }
}
