using System.Net;
using Akka;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Akka.Event;
using Broker.Cluster;
using Broker.Configuration;
using Broker.Routing;
using Broker.Sessions;
using Broker.Transport;

namespace Broker;

/// <summary>
/// One broker node: the Akka.NET actor system (a cluster member), the two shard regions (sessions by client id,
/// topics by topic name), this node's index actors, and the MQTT listener. Used by Broker.Node's host and by
/// in-process tests alike.
/// </summary>
public sealed class BrokerServer : IAsyncDisposable
{
    public const int MaxShards = 100; // ten per node for a ten-node cluster; rebalancing moves whole shards
    private readonly MqttListener _listener = new();
    private readonly Persistence.SessionIndex _index;
    private readonly TaskCompletionSource<string> _removed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _closeLock = new();
    private Task? _closeClients;
    private int _stopRequested;
    private WebSocketListener? _webSockets;

    private BrokerServer(BrokerOptions options, ActorSystem system)
    {
        Options = options;
        System = system;
        Context = new BrokerContext(options);
        Log = Logging.GetLogger(system, typeof(BrokerServer));
        Meter = new BrokerMeter(Context.Metrics);
        _index = new Persistence.SessionIndex(options);
    }

    /// <summary>This node's metrics as System.Diagnostics.Metrics instruments (meter "Broker").</summary>
    public BrokerMeter Meter { get; }

    public BrokerOptions Options { get; }

    public ActorSystem System { get; }

    public BrokerContext Context { get; }

    /// <summary>The node's own log lines (start-up, storage, security) under the category Broker.BrokerServer, not Akka's.</summary>
    private ILoggingAdapter Log { get; }

    /// <summary>
    /// The address and port the MQTT listener is bound to. DotNetty's dual-mode socket reports an IPv4 address as
    /// IPv4-mapped IPv6 (::ffff:127.0.0.1); it is given back in the IPv4 form it was configured with.
    /// </summary>
    public IPEndPoint MqttEndPoint => _listener.LocalEndPoint is { } bound
        ? bound.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(bound.Address.MapToIPv4(), bound.Port) : bound
        : throw new InvalidOperationException("Not started");

    /// <summary>The TLS listener's address and port, or null when Mqtt:Tls is not configured.</summary>
    public IPEndPoint? MqttTlsEndPoint => _listener.TlsEndPoint is { } bound
        ? bound.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(bound.Address.MapToIPv4(), bound.Port) : bound
        : null;

    /// <summary>
    /// Completes (with the reason) when this node leaves the cluster without its host asking: downed by the
    /// split-brain resolver, quarantined by the others, or its actor system stopped. By then the MQTT listeners are
    /// closing; an actor system cannot rejoin, so the host must end the process and let its supervisor start a new one.
    /// </summary>
    public Task<string> Removed => _removed.Task;
    /// <summary>The ws:// listener's address and port, or null when Mqtt:WebSocket:Port is off.</summary>
    public IPEndPoint? WebSocketEndPoint => _webSockets?.EndPoint;

    /// <summary>The wss:// listener's address and port, or null when Mqtt:WebSocket:TlsPort is off.</summary>
    public IPEndPoint? WebSocketTlsEndPoint => _webSockets?.TlsEndPoint;

    /// <param name="setup">
    /// Extra actor system setup from the host (e.g. its logger bridge); the HOCON of its <see cref="BootstrapSetup"/>,
    /// if any, takes precedence over the broker's.
    /// </param>
    /// <param name="authenticator">
    /// Replaces the password file check (e.g. an HTTP or database authenticator); null uses <c>Auth:PasswordFile</c>.
    /// </param>
    public static async Task<BrokerServer> StartAsync(
        BrokerOptions options, CancellationToken cancellationToken = default, ActorSystemSetup? setup = null,
        Security.IAuthenticator? authenticator = null)
    {
        ListenerPorts.EnsureFree(ListenerPorts.Of(options, includeMetrics: false));
        await Persistence.StorageSetup.VerifyAsync(options, cancellationToken).ConfigureAwait(false);
        (options, var seedNote) = await FirstSeed.GuardAsync(options, cancellationToken).ConfigureAwait(false);
        var config = ConfigurationFactory.ParseString(BrokerHocon.Build(options))
            .WithFallback(Akka.Persistence.Sql.SqlPersistence.DefaultConfiguration)
            .WithFallback(KubernetesDiscovery.Fallback(options));
        if (setup?.Get<BootstrapSetup>().Value?.Config.Value is { } hostConfig)
        {
            config = hostConfig.WithFallback(config);
        }

        ActorSystem system;
        try
        {
            var systemSetup = (setup ?? ActorSystemSetup.Empty).And(BootstrapSetup.Create().WithConfig(config));
            if (Persistence.StorageSetup.DataOptions(options) is { } storage)
            {
                systemSetup = systemSetup.And(storage);
            }

            system = ActorSystem.Create(BrokerHocon.SystemName, systemSetup);
        }
        catch (Exception e) when (ListenerPorts.IsAddressInUse(e))
        {
            // Remoting binds Cluster:Port while the actor system starts.
            throw new PortInUseException("Cluster:Port", options.Cluster.Hostname, options.Cluster.Port, e);
        }

        var server = new BrokerServer(options, system);
        if (seedNote is not null)
        {
            server.Log.Warning("Cluster: {0}", seedNote);
        }

        // First phase of every coordinated shutdown, whoever started it: no client may stay on a node that is leaving.
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "broker-close-listeners",
            server.OnShutdownStartedAsync);
        try
        {
            server.Context.Security = Security.BrokerSecurity.Create(options, server.Log, authenticator);
            await server.StartClusterAsync(cancellationToken).ConfigureAwait(false);
            server.StartStoredSessionUpkeep();
            if (options.Sys.Interval > 0)
            {
                system.ActorOf(Operations.SysTopicsActor.Props(server.Context, TimeSpan.FromSeconds(options.Sys.Interval)),
                    Operations.SysTopicsActor.Name);
            }

            await server._listener.StartAsync(system, server.Context, IPAddress.Parse(options.Mqtt.Address), options.Mqtt.Port)
                .ConfigureAwait(false);
            Security.TlsServerSetup? tlsSetup = null;
            if (options.Mqtt.Tls.Enabled)
            {
                var tls = options.Mqtt.Tls;
                tlsSetup = Security.TlsServerSetup.Load(tls);
                var address = IPAddress.Parse(tls.Address.Length > 0 ? tls.Address : options.Mqtt.Address);
                await server._listener.StartTlsAsync(system, server.Context, address, tls.Port, tlsSetup).ConfigureAwait(false);
                server.Log.Info("TLS listener on {0} with certificate {1}; client certificates {2}", server.MqttTlsEndPoint, tlsSetup.Subject,
                    tls.RequireClientCertificate ? "required" : tls.ClientCaFile.Length > 0 ? "optional" : "not asked for");
            }

            if (options.Mqtt.WebSocket.Enabled)
            {
                server._webSockets = new WebSocketListener(system, server.Context, server._listener.WorkerGroup);
                await server._webSockets.StartAsync(tlsSetup).ConfigureAwait(false);
            }

            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartClusterAsync(CancellationToken cancellationToken)
    {
        var cluster = Akka.Cluster.Cluster.Get(System);
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        if (KubernetesDiscovery.Enabled(Options))
        {
            await KubernetesDiscovery.StartAsync(System).ConfigureAwait(false);
        }
        else if (Options.Cluster.SeedNodes.Count == 0)
        {
            cluster.Join(cluster.SelfAddress);
        }

        var context = Context;
        await _index.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
        context.SessionIndexWriter = System.ActorOf(Persistence.SessionIndexWriter.Props(_index), Persistence.SessionIndexWriter.Name);
        context.SnapshotTrimmer = System.ActorOf(Persistence.SnapshotTrimmer.Props(), Persistence.SnapshotTrimmer.Name);
        context.WildcardIndexActor = System.ActorOf(WildcardIndexActor.Props(context.Wildcards), WildcardIndexActor.Name);
        context.RetainedIndexActor = System.ActorOf(RetainedIndexActor.Props(context.Metrics, context.SessionIndexWriter, context.RoutesSynced), RetainedIndexActor.Name);
        context.SessionExtractor = new ClientIdExtractor(MaxShards, registry: Options.Sessions.CleanSessionsOnConnectionNode);
        context.TopicExtractor = new TopicExtractor(MaxShards);
        var janitor = new Persistence.StorageJanitor(Options);
        context.SessionDirectory = System.ActorOf(
            Persistence.StoredEntityDirectory.Props("session-", context.SessionShardOf, janitor,
                new Persistence.KeptStates(Options.Sessions.PassivatedStateBytes, Options.Sessions.PassivatedStateMegabytes * 1024L * 1024)),
            "session-directory");
        if (Options.Storage.ReadSessionsInBatches)
        {
            context.StoredStateReader = System.ActorOf(Persistence.StoredStateReader.Props(Options), Persistence.StoredStateReader.Name);
        }

        context.TopicDirectory = System.ActorOf(
            Persistence.StoredEntityDirectory.Props("topic-", context.TopicShardOf, janitor), "topic-directory");
        context.Clients.NodeAddress = Akka.Cluster.Cluster.Get(System).SelfAddress.ToString();
        context.ClientRegistry = System.ActorOf(Operations.ClientRegistryActor.Props(context.Clients, context.Metrics), Operations.ClientRegistryActor.Name);
        context.Links.Start(System.ActorOf(NodeLinkActor.Props(context.Links), NodeLinkActor.Name));
        context.Nodes.Start(System, System.ActorOf(SessionHost.Props(context), SessionHost.Name));
        context.ConnectionParents.Start(System);
        System.ActorOf(NodeDirectoryActor.Props(context.Nodes, context.WildcardIndexActor), NodeDirectoryActor.Name);
        if (!KubernetesDiscovery.Enabled(Options) && Options.Cluster.SeedNodes.Count > 1)
        {
            System.ActorOf(StrayClusterDetector.Props(Options.Cluster.SeedNodes), StrayClusterDetector.Name);
        }

        if (KubernetesDiscovery.Enabled(Options) || Options.Cluster.SeedNodes.Count > 1)
        {
            System.ActorOf(Fence.Props(Fence.PauseLimitOf(System.Settings.Config), context), Fence.Name);
        }

        // A member that alone cannot reach the database hands its shards to those that can (Storage:LeaveAfter).
        if (!Persistence.StorageSetup.IsSqlite(Options) && Options.Storage.LeaveAfter > 0 &&
            (KubernetesDiscovery.Enabled(Options) || Options.Cluster.SeedNodes.Count > 1))
        {
            System.ActorOf(StorageWatch.Props(Options.Storage.ConnectionString, TimeSpan.FromSeconds(Options.Storage.LeaveAfter)), StorageWatch.Name);
        }

        // Any node on PostgreSQL may have members (a single seed listed, nodes joining it); alone it never suspects anyone.
        if (!Persistence.StorageSetup.IsSqlite(Options) && Options.Cluster.DownEndedNodes)
        {
            System.ActorOf(NodePresence.Props(Options.Storage.ConnectionString, cluster.SelfAddress), NodePresence.Name);
            System.ActorOf(EndedNodeDetector.Props(Options.Storage.ConnectionString), EndedNodeDetector.Name);
        }

        context.ConnectionLog = Akka.Event.Logging.GetLogger(System, typeof(Sessions.ClientConnectionActor));
        context.SessionLog = Akka.Event.Logging.GetLogger(System, typeof(Sessions.SessionEntity));

        var sharding = ClusterSharding.Get(System);
        var baseSettings = ClusterShardingSettings.Create(System);

        // No idle passivation by the shard (a connected client that is quiet for a while must keep its session
        // entity): an offline persistent session passivates itself (Sessions:PassivateAfterSeconds). No rebalancing
        // of running shards (it would close live connections when a node joins).
        context.SessionRegion = await sharding.StartAsync(
            "session",
            id => id == ClientIdRegistry.EntityId ? ClientIdRegistry.Props(context) : SessionEntity.Props(id, context),
            baseSettings.WithPassivateIdleAfter(TimeSpan.Zero),
            context.SessionExtractor,
            new NoRebalanceAllocationStrategy(),
            SessionHandOff.Instance).ConfigureAwait(false);

        // Topic entities recover from the journal, so idle ones can leave memory.
        context.TopicRegion = await sharding.StartAsync(
            "topic",
            id => TopicEntity.Props(id, context),
            baseSettings.WithPassivateIdleAfter(TimeSpan.FromMinutes(2)),
            context.TopicExtractor,
            Options.Cluster.PlaceTopicsByFirstUse
                ? new FirstUseAllocationStrategy()
                : ShardAllocationStrategy.LeastShardAllocationStrategy(absoluteLimit: 20, relativeLimit: 0.1), // as configured in BrokerHocon
            TopicHandOff.Instance).ConfigureAwait(false);

        using var registration = cancellationToken.Register(() => up.TrySetCanceled());
        await up.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        await SyncRoutesAsync(cancellationToken).ConfigureAwait(false);
        await Persistence.StorageProbe.ProbeAsync(System, Persistence.StorageSetup.Describe(Options), TimeSpan.FromSeconds(30))
            .ConfigureAwait(false);
    }

    /// <summary>
    /// Changes to the wildcard and retained indexes made before this node was a member reached it only by gossip:
    /// read every node's copy now. Sharding may already have given this node topic shards (it does as soon as the node
    /// joins, before its listener opens); their entities route only once this is done (see
    /// <see cref="BrokerContext.RoutesSynced"/>). Changes made from now on are sent to this node directly.
    /// </summary>
    private async Task SyncRoutesAsync(CancellationToken ct)
    {
        await SeedStoredRoutesAsync(ct).ConfigureAwait(false);
        var syncTimeout = TimeSpan.FromSeconds(5);
        await Task.WhenAll(
            Context.WildcardIndexActor.Ask<ReplicaSynced>(new SyncReplica(syncTimeout), syncTimeout + TimeSpan.FromSeconds(5), ct),
            Context.RetainedIndexActor.Ask<ReplicaSynced>(new SyncReplica(syncTimeout), syncTimeout + TimeSpan.FromSeconds(5), ct))
            .ConfigureAwait(false);
        Context.MarkRoutesSynced();
    }

    /// <summary>
    /// After a restart nothing runs for a stored session until someone addresses it, and what lived only in memory
    /// (the DistributedData replicas of wildcard routes and retained topics) is gone after a whole-cluster restart.
    /// Instead of waking every stored entity, the stored wildcard routes and retained topics are read (one query each,
    /// <see cref="Persistence.SessionIndex"/>) into this node's indexes before its topic entities may route (then the
    /// other nodes' replicas are merged, <see cref="SyncRoutesAsync"/>). Exact routes are in the topic entities'
    /// journals already. So a publish accepted after "ready" reaches every stored subscriber, and start-up takes the
    /// same few queries whatever the number of stored sessions.
    /// </summary>
    private async Task SeedStoredRoutesAsync(CancellationToken ct)
    {
        var started = System.Scheduler.MonotonicClock;
        var routes = await _index.WildcardRoutesAsync(ct).ConfigureAwait(false);
        var retained = await _index.RetainedTopicsAsync(ct).ConfigureAwait(false);
        var elements = new List<string>(routes.Count);
        foreach (var (clientId, filter) in routes)
        {
            var group = Protocol.MqttTopic.TryParseShared(filter, out var g, out var inner) ? g : null;
            elements.Add(WildcardIndexActor.Encode(group is null ? filter : inner, new SubscriberKey(clientId, group)));
        }

        var seedTimeout = TimeSpan.FromSeconds(30);
        await Task.WhenAll(
            Context.WildcardIndexActor.Ask<ReplicaSynced>(new SeedReplica(elements), seedTimeout, ct),
            Context.RetainedIndexActor.Ask<ReplicaSynced>(new SeedReplica(retained), seedTimeout, ct)).ConfigureAwait(false);
        var took = System.Scheduler.MonotonicClock - started;
        Log.Info("Storage: loaded {0} stored wildcard routes and {1} retained topics in {2:F1} s",
            routes.Count, retained.Count, took.TotalSeconds);
    }

    /// <summary>
    /// Starts the expiry sweeper, which wakes only the stored sessions that are due, and purges the rows of ended
    /// entities in the background.
    /// </summary>
    private void StartStoredSessionUpkeep()
    {
        System.ActorOf(Persistence.ExpirySweeper.Props(_index, Context.SessionRegion), Persistence.ExpirySweeper.Name);
        _ = PurgeEndedAsync();
    }

    private async Task PurgeEndedAsync()
    {
        try
        {
            var purged = await new Persistence.StorageJanitor(Options).PurgeEndedAsync().ConfigureAwait(false);
            Log.Info("Storage: purged {0} rows of ended entities", purged);
        }
        catch (Exception e)
        {
            Log.Warning("Storage: could not purge rows of ended entities: {0}", e.GetBaseException().Message);
        }
    }

    /// <summary>
    /// Graceful stop: no new connections, every client gets DISCONNECT 0x8B (v5) and is closed, then the node
    /// leaves the cluster (its shards move to the other nodes) and the actor system ends.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _stopRequested, 1);
        await CloseClientsAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        await CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClrExitReason.Instance).ConfigureAwait(false);
        Context.Security.Dispose();
        Context.Connections.Dispose();
        Meter.Dispose();
    }

    private async Task<Done> OnShutdownStartedAsync()
    {
        if (Volatile.Read(ref _stopRequested) == 0)
        {
            // Downed, quarantined or fenced: the majority starts this node's sessions and topics elsewhere after its
            // removal margin, while this shutdown takes longer. Its entities stop journaling, routing and delivering
            // now, so that no two incarnations of one session run (BrokerContext.Fenced).
            Context.Downed();
            var reason = CoordinatedShutdown.Get(System).ShutdownReason?.GetType().Name ?? "unknown";
            System.Log.Error("This node is leaving the cluster without being asked to ({0}): closing the MQTT listeners " +
                "and every client connection; the process must be restarted to serve again", reason);
            _removed.TrySetResult(reason);
            // Within the phase's default timeout (5 s): clients get 0x8B; whatever is still open then is cut.
            await CloseClientsAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }

        return Done.Instance;
    }

    /// <summary>Stops accepting, asks every connection to close (v5: 0x8B), then closes the listeners (once).</summary>
    private Task CloseClientsAsync(TimeSpan grace)
    {
        lock (_closeLock)
        {
            return _closeClients ??= CloseAsync();
        }

        async Task CloseAsync()
        {
            await _listener.StopAcceptingAsync().ConfigureAwait(false);
            if (_webSockets is not null)
            {
                await _webSockets.StopAcceptingAsync().ConfigureAwait(false);
            }

            Context.Connections.TellAll(ClientConnectionActor.ServerShuttingDown.Instance);
            var deadline = DateTime.UtcNow + grace;
            while (Context.Metrics.Connections > 0 && DateTime.UtcNow < deadline && !System.WhenTerminated.IsCompleted)
            {
                await Task.Delay(20).ConfigureAwait(false);
            }

            if (_webSockets is not null)
            {
                await _webSockets.DisposeAsync().ConfigureAwait(false);
            }

            await _listener.DisposeAsync().ConfigureAwait(false); // its event loops end: any channel left is closed
        }
    }
}
