using System.Net;
using Akka.Cluster;
using Broker.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Node.Operations;

/// <summary>
/// The node's HTTP endpoint for operators (Kestrel on <c>Metrics:Address</c>:<c>Metrics:Port</c>):
/// <c>/metrics</c> (Prometheus text, by prometheus-net: <see cref="PrometheusExport"/>), <c>/health/live</c>, <c>/health/ready</c>, and with <c>Management:Token</c> the
/// management API under <c>/api</c> (see <see cref="ManagementApi"/>). It starts before the broker, so that a probe
/// sees "live, not ready" while storage and the cluster come up; <see cref="Attach"/> hands it the running broker.
/// </summary>
public sealed class OperationsHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ReadinessProbe _readiness = new();
    private volatile BrokerServer? _broker;
    private PrometheusExport? _export;
    private volatile string _notReady = "starting";

    private OperationsHttpServer(WebApplication app)
    {
        _app = app;
    }

    /// <summary>The address and port Kestrel is bound to.</summary>
    public IPEndPoint EndPoint { get; private set; } = new(IPAddress.Loopback, 0);

    public BrokerServer? Broker => _broker;

    public static async Task<OperationsHttpServer> StartAsync(BrokerOptions options, ILoggerFactory? loggerFactory = null)
    {
        // The empty builder reads no configuration of its own (no ASPNETCORE_URLS, no "Kestrel" section): the
        // broker's configuration alone decides what is bound.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Parse(options.Metrics.Address), options.Metrics.Port);
        });
        builder.Services.AddRoutingCore();
        if (loggerFactory is not null)
        {
            builder.Services.AddSingleton(loggerFactory);
        }

        builder.Services.AddLogging();
        var app = builder.Build();
        var server = new OperationsHttpServer(app);
        app.UseRouting();
        server.MapEndpoints(options);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (global::Broker.Transport.ListenerPorts.IsAddressInUse(e))
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new global::Broker.Transport.PortInUseException("Metrics:Port", options.Metrics.Address, options.Metrics.Port, e);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(bound);
        server.EndPoint = new IPEndPoint(IPAddress.Parse(options.Metrics.Address), uri.Port);
        return server;
    }

    /// <summary>The broker is running: metrics, readiness and the API now answer for it.</summary>
    public void Attach(BrokerServer broker)
    {
        var previous = Interlocked.Exchange(ref _export, new PrometheusExport(broker));
        previous?.Dispose();
        _broker = broker;
    }

    /// <summary>The broker is stopping (or was removed from its cluster): readiness turns false at once.</summary>
    public void Detach(bool stopping = true)
    {
        _notReady = stopping ? "stopping" : "starting";
        _broker = null;
        Interlocked.Exchange(ref _export, null)?.Dispose();
    }

    private void MapEndpoints(BrokerOptions options)
    {
        _app.MapGet("/metrics", async (HttpContext http) =>
        {
            if (Volatile.Read(ref _export) is not { } export)
            {
                http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await http.Response.WriteAsync("broker not started\n").ConfigureAwait(false);
                return;
            }

            http.Response.ContentType = PrometheusExport.ContentType;
            await export.WriteAsync(http.Response.Body, http.RequestAborted).ConfigureAwait(false);
        });

        // Live: the process serves HTTP and its actor system runs. A failing liveness probe means "restart me".
        _app.MapGet("/health/live", () =>
            _broker is { } b && b.System.WhenTerminated.IsCompleted
                ? Results.Json(new { status = "terminated" }, statusCode: StatusCodes.Status503ServiceUnavailable)
                : Results.Json(new { status = "live" }));

        // Ready: this node is an Up cluster member and its storage answers; only then should clients be sent here.
        _app.MapGet("/health/ready", async () =>
        {
            if (_broker is not { } broker)
            {
                return Results.Json(new { ready = false, member = _notReady, storage = "unknown" }, statusCode: StatusCodes.Status503ServiceUnavailable);
            }

            var member = Akka.Cluster.Cluster.Get(broker.System).SelfMember.Status;
            var storage = await _readiness.StorageReachableAsync(broker).ConfigureAwait(false);
            var ready = member == MemberStatus.Up && storage;
            return Results.Json(
                new { ready, member = member.ToString(), storage = storage ? "reachable" : "unreachable" },
                statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });

        if (options.Management.Token.Length > 0)
        {
            ManagementApi.Map(_app, options.Management.Token, () => _broker);
            DashboardEndpoint.Map(_app);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _broker = null;
        Interlocked.Exchange(ref _export, null)?.Dispose();
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
