using Akka.Actor;
using Akka.Event;
using Npgsql;

namespace Broker.Cluster;

/// <summary>
/// A node's presence in PostgreSQL: one database session of its own, named after the node's remoting address
/// (<c>application_name</c>), held open for the life of the process. When the process ends in any way (kill -9
/// included) its kernel closes the socket and PostgreSQL ends that session at once; while the process lives the session
/// stays, even when a firewall cuts the node off from the others or from the database (an idle session's server side
/// learns of a cut only from TCP keep-alive, hours later). <see cref="EndedNodeDetector"/> asks for it before it downs a
/// node whose remoting port refuses connections. One per node, at <c>/user/node-presence</c>.
/// </summary>
public sealed class NodePresence : ReceiveActor, IWithTimers
{
    public const string Name = "node-presence";
    private static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(5);
    private readonly string _connectionString;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private NpgsqlConnection? _connection;
    private bool _busy;

    public NodePresence(string storageConnectionString, Address self)
    {
        _connectionString = new NpgsqlConnectionStringBuilder(storageConnectionString)
        {
            ApplicationName = ApplicationNameOf(self),
            Pooling = false,
        }.ToString();
        Receive<Check>(_ => CheckNow());
        Receive<Checked>(c =>
        {
            _busy = false;
            if (c.Error is not null)
            {
                _log.Warning("Database presence of this node lost ({0}); opening it again", c.Error);
                _connection?.Dispose();
                _connection = null;
            }
        });
        Receive<Opened>(o =>
        {
            _busy = false;
            if (o.Connection is not null)
            {
                _connection = o.Connection;
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
    public static string ApplicationNameOf(Address node)
    {
        var name = $"broker {node.Host}:{node.Port}";
        return name.Length <= 63 ? name : name[..63];
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
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = @name", connection);
            command.Parameters.AddWithValue("name", ApplicationNameOf(node));
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
        CheckNow();
        Timers.StartPeriodicTimer("check", Check.Instance, CheckEvery);
    }

    protected override void PostStop() => _connection?.Dispose();

    private void CheckNow()
    {
        if (_busy)
        {
            return;
        }

        _busy = true;
        if (_connection is null)
        {
            OpenAsync(_connectionString).PipeTo(Self);
            return;
        }

        PingAsync(_connection).PipeTo(Self);
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

    private static async Task<Checked> PingAsync(NpgsqlConnection connection)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await using var command = new NpgsqlCommand("SELECT 1", connection);
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
