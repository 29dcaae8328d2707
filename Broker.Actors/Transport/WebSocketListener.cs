using System.Net;
using System.Security.Authentication;
using Akka.Actor;
using Akka.Event;
using Broker.Cluster;
using Broker.Security;
using DotNetty.Transport.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Transport;

/// <summary>
/// MQTT over WebSocket (MQTT v5.0 section 6, v3.1.1 section 6): Kestrel serves <c>Mqtt:WebSocket:Path</c> on
/// <c>Mqtt:WebSocket:Port</c> (ws://) and <c>Mqtt:WebSocket:TlsPort</c> (wss://, with the Mqtt:Tls certificate and
/// client-certificate rules). It checks the Origin and the subprotocol, accepts the upgrade, and hands the socket to a
/// <see cref="WebSocketChannel"/> with the TCP listener's pipeline, registered on the TCP listener's event loops.
/// <para>
/// Kestrel rather than hand-written RFC 6455 framing: ASP.NET Core is already in the product (the operations
/// endpoint) and its WebSocket implementation is the one .NET ships and maintains (handshake, masking,
/// fragmentation, control frames, close handshake, UTF-8 and protocol-error handling). DotNetty's own WebSocket codec
/// (DotNetty.Codecs.Http) would have fitted the pipeline directly, but it is not available from the package feed.
/// </para>
/// </summary>
public sealed class WebSocketListener : IAsyncDisposable
{
    /// <summary>"The WebSocket Sub Protocol name selected and returned by the Server MUST be 'mqtt'" [MQTT-6.0.0-4]; mqttv3.1 for 3.1 clients.</summary>
    private static readonly string[] SubProtocols = ["mqtt", "mqttv3.1"];

    private readonly ActorSystem _system;
    private readonly BrokerContext _context;
    private readonly IEventLoopGroup _loops;
    private readonly ILoggingAdapter _log;
    private WebApplication? _app;
    private Task? _stopping;

    public WebSocketListener(ActorSystem system, BrokerContext context, IEventLoopGroup loops)
    {
        _system = system;
        _context = context;
        _loops = loops;
        _log = Logging.GetLogger(system, typeof(WebSocketListener));
    }

    /// <summary>The ws:// listener's address and port, or null when it is off.</summary>
    public IPEndPoint? EndPoint { get; private set; }

    /// <summary>The wss:// listener's address and port, or null when it is off.</summary>
    public IPEndPoint? TlsEndPoint { get; private set; }

    public async Task StartAsync(TlsServerSetup? tls)
    {
        var options = _context.Options.Mqtt.WebSocket;
        var address = IPAddress.Parse(options.Address.Length > 0 ? options.Address : _context.Options.Mqtt.Address);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().UseKestrelHttpsConfiguration().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            if (options.Port >= 0)
            {
                k.Listen(address, options.Port);
            }

            if (options.TlsPort >= 0 && tls is not null)
            {
                k.Listen(address, options.TlsPort, listen => listen.UseHttps(HttpsOptions(tls)));
            }
        });
        builder.Services.AddLogging();
        var app = builder.Build();
        app.UseWebSockets();
        app.Run(HandleAsync);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException(
                $"Mqtt:WebSocket:Port = {options.Port} / Mqtt:WebSocket:TlsPort = {options.TlsPort} on {address}: {e.Message}", e);
        }

        _app = app;
        foreach (var bound in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses)
        {
            var uri = new Uri(bound);
            var endPoint = new IPEndPoint(address, uri.Port);
            if (uri.Scheme == "https")
            {
                TlsEndPoint = endPoint;
            }
            else
            {
                EndPoint = endPoint;
            }
        }

        _log.Info("WebSocket listener on {0}{1} path {2}; origins allowed: {3}",
            EndPoint is null ? "" : $"ws://{EndPoint} ", TlsEndPoint is null ? "" : $"wss://{TlsEndPoint}", options.Path,
            options.AllowedOrigins.Count == 0 ? "any" : string.Join(", ", options.AllowedOrigins));
    }

    private static HttpsConnectionAdapterOptions HttpsOptions(TlsServerSetup tls) => new()
    {
        ServerCertificate = tls.Certificate,
        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateMode = tls.RequiresClientCertificate ? ClientCertificateMode.RequireCertificate
            : tls.AsksForClientCertificate ? ClientCertificateMode.AllowCertificate
            : ClientCertificateMode.NoCertificate,
        ClientCertificateValidation = (certificate, _, errors) => tls.AcceptsClientCertificate(certificate, errors),
    };

    private async Task HandleAsync(HttpContext http)
    {
        var options = _context.Options.Mqtt.WebSocket;
        if (!string.Equals(http.Request.Path.Value, options.Path, StringComparison.Ordinal))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        if (!http.WebSockets.IsWebSocketRequest)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            await http.Response.WriteAsync("MQTT over WebSocket: send a WebSocket upgrade with subprotocol mqtt\n").ConfigureAwait(false);
            return;
        }

        var remote = new IPEndPoint(http.Connection.RemoteIpAddress ?? IPAddress.None, http.Connection.RemotePort);
        var origin = http.Request.Headers.Origin.ToString();
        if (origin.Length > 0 && options.AllowedOrigins.Count > 0
            && !options.AllowedOrigins.Any(o => string.Equals(o.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase)))
        {
            _log.Warning("WebSocket {0}: origin {1} is not in Mqtt:WebSocket:AllowedOrigins, refused (403)", remote, origin);
            http.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        var offered = http.WebSockets.WebSocketRequestedProtocols;
        var chosen = SubProtocols.FirstOrDefault(p => offered.Contains(p, StringComparer.OrdinalIgnoreCase));
        if (chosen is null && offered.Count > 0)
        {
            _log.Warning("WebSocket {0}: subprotocols {1} offered, none of mqtt, mqttv3.1; refused (400)", remote, string.Join(", ", offered));
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        var socket = await http.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = chosen }).ConfigureAwait(false);
        var local = new IPEndPoint(http.Connection.LocalIpAddress ?? IPAddress.None, http.Connection.LocalPort);
        var maxPacketSize = _context.Options.Mqtt.MaxPacketSize;
        var channel = new WebSocketChannel(socket, local, remote,
            options.MaxMessageSize > 0 ? options.MaxMessageSize : maxPacketSize, _log);
        if (http.Connection.ClientCertificate is { } certificate)
        {
            channel.GetAttribute(TlsServerSetup.ClientCertificateKey).Set(certificate);
        }

        var codec = new MqttCodecState();
        channel.Pipeline.AddLast("decoder", new MqttDecoderHandler(codec, maxPacketSize));
        channel.Pipeline.AddLast("client", new ClientChannelHandler(_system, _context, codec));
        try
        {
            await _loops.GetNext().RegisterAsync(channel).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _log.Warning("WebSocket {0}: could not start the connection: {1}", remote, e.Message);
            socket.Abort();
            return;
        }

        // The HTTP request lives as long as the WebSocket: Kestrel closes the TCP connection when this returns.
        await channel.Ended.ConfigureAwait(false);
    }

    /// <summary>Stops accepting; open WebSocket connections are closed by their actors (then Kestrel lets them go).</summary>
    public Task StopAcceptingAsync()
    {
        if (_app is not null && _stopping is null)
        {
            // Kestrel stops listening at once, then waits up to this long for the open connections to end.
            _stopping = _app.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(6)).Token);
        }

        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is null)
        {
            return;
        }

        await StopAcceptingAsync().ConfigureAwait(false);
        await _stopping!.ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
