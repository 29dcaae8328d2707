using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Npgsql;

namespace Broker.Cluster;

/// <summary>
/// A node's presence in PostgreSQL: one database session of its own, named after the node's remoting address
/// (<c>application_name</c>), held open for the life of the process. When the process ends in any way (kill -9
/// included) its kernel closes the socket and PostgreSQL ends that session at once; while the process lives the session
/// stays, even when a firewall cuts the node off from the others or from the database (an idle session's server side
/// learns of a cut only from TCP keep-alive, hours later). <see cref="EndedNodeDetector"/> asks for it before it downs a
/// node whose remoting port refuses connections. While the node is an Up member the name carries " up"
/// (<see cref="UpNodesAsync"/>): a first seed node that starts while others are Up joins them instead of forming a
/// cluster of its own (<see cref="FirstSeed"/>). One per node, at <c>/user/node-presence</c>.
/// </summary>
public sealed class NodePresence : ReceiveActor, IWithTimers
{
    public const string Name = "node-presence";
    private static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(5);
    private readonly string _storage;
    private readonly Address _self;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private NpgsqlConnection? _connection;
    private bool _busy;
    private bool _up;
    private string _asked = "";   // the name of the latest open or check
    private string _applied = ""; // the name the session carries

    public NodePresence(string storageConnectionString, Address self)
    {
        _storage = storageConnectionString;
        _self = self;
        Receive<Check>(_ => CheckNow());
        Receive<ClusterEvent.IMemberEvent>(e =>
        {
            if (e.Member.Address.Equals(_self) && _up != (e.Member.Status == MemberStatus.Up))
            {
                _up = e.Member.Status == MemberStatus.Up;
                CheckNow();
            }
        });
        Receive<Checked>(c =>
        {
            _busy = false;
            if (c.Error is not null)
            {
                _log.Warning("Database presence of this node lost ({0}); opening it again", c.Error);
                _connection?.Dispose();
                _connection = null;
                return;
            }

            _applied = _asked;
            CheckIfStale();
        });
        Receive<Opened>(o =>
        {
            _busy = false;
            if (o.Connection is not null)
            {
                _connection = o.Connection;
                _applied = _asked;
                CheckIfStale();
            }
            else
            {
                _log.Warning("Database presence of this node could not be opened ({0}); trying again", o.Error);
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string storageConnectionString, Address self) =>
        Akka.Actor.Props.Create(() => new NodePresence(storageConnectionString, self));

    /// <summary>The application name of a node's presence session (PostgreSQL keeps 63 bytes of it).</summary>
    public static string ApplicationNameOf(Address node, bool up = false)
    {
        var name = $"broker {node.Host}:{node.Port}" + (up ? " up" : "");
        return name.Length <= 63 ? name : name[..63];
    }

    /// <summary>
    /// Which of <paramref name="nodes"/> hold their presence session marked Up (members of a running cluster), or null
    /// when the database could not be asked.
    /// </summary>
    public static async Task<IReadOnlyList<Address>?> UpNodesAsync(string storageConnectionString, IReadOnlyList<Address> nodes, TimeSpan timeout)
    {
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            await using var connection = new NpgsqlConnection(storageConnectionString);
            await connection.OpenAsync(cts.Token).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY(@names)", connection);
            command.Parameters.AddWithValue("names", nodes.Select(n => ApplicationNameOf(n, up: true)).ToArray());
            var found = new HashSet<string>();
            await using var reader = await command.ExecuteReaderAsync(cts.Token).ConfigureAwait(false);
            while (await reader.ReadAsync(cts.Token).ConfigureAwait(false))
            {
                found.Add(reader.GetString(0));
            }

            return nodes.Where(n => found.Contains(ApplicationNameOf(n, up: true))).ToList();
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether <paramref name="node"/> holds its presence session in the database of <paramref name="storageConnectionString"/>:
    /// true or false, or null when the database could not be asked (then nothing may be concluded).
    /// </summary>
    public static async Task<bool?> IsPresentAsync(string storageConnectionString, Address node, TimeSpan timeout)
    {
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            await using var connection = new NpgsqlConnection(storageConnectionString);
            await connection.OpenAsync(cts.Token).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name IN (@name, @up)", connection);
            command.Parameters.AddWithValue("name", ApplicationNameOf(node));
            command.Parameters.AddWithValue("up", ApplicationNameOf(node, up: true));
            var count = (long)(await command.ExecuteScalarAsync(cts.Token).ConfigureAwait(false) ?? 0L);
            return count > 0;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent));
        CheckNow();
        Timers.StartPeriodicTimer("check", Check.Instance, CheckEvery);
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _connection?.Dispose();
    }

    private void CheckNow()
    {
        if (_busy)
        {
            return;
        }

        _busy = true;
        var name = _asked = ApplicationNameOf(_self, _up);
        if (_connection is null)
        {
            OpenAsync(new NpgsqlConnectionStringBuilder(_storage) { ApplicationName = name, Pooling = false }.ToString()).PipeTo(Self);
            return;
        }

        PingAsync(_connection, name).PipeTo(Self);
    }

    private static async Task<Opened> OpenAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await connection.OpenAsync(cts.Token).ConfigureAwait(false);
            return new Opened(connection, null);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            return new Opened(null, e.GetBaseException().Message);
        }
    }

    /// <summary>The node's state changed while the session was being opened or checked: name it again.</summary>
    private void CheckIfStale()
    {
        if (_applied != ApplicationNameOf(_self, _up))
        {
            CheckNow();
        }
    }

    /// <summary>Checks the session and names it as the node's state asks (with or without " up").</summary>
    private static async Task<Checked> PingAsync(NpgsqlConnection connection, string name)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await using var command = new NpgsqlCommand("SELECT set_config('application_name', @name, false)", connection);
            command.Parameters.AddWithValue("name", name);
            await command.ExecuteScalarAsync(cts.Token).ConfigureAwait(false);
            return new Checked(null);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            return new Checked(e.GetBaseException().Message);
        }
    }

    private sealed class Check
    {
        public static readonly Check Instance = new();
    }

    private sealed record Opened(NpgsqlConnection? Connection, string? Error);

    private sealed record Checked(string? Error);
}
