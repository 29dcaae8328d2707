using Broker.Tests.Interop;
using Npgsql;

namespace Broker.Tests.Durability;

/// <summary>
/// A throwaway PostgreSQL server for the durability specs (xunit collection fixture): initdb into a fresh temporary
/// directory owned by the postgres user (initdb refuses to run as root), started with pg_ctl on 127.0.0.1 and a free
/// port, with a database <c>broker</c>. <see cref="StopAsync"/> / <see cref="StartAsync"/> take it down and bring it
/// back on the same data directory and port (the outage spec). Dispose stops it with <c>pg_ctl -m fast stop</c> on
/// its own data directory and deletes the directory: nothing else on the machine is touched.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("broker-pg-").FullName;
    private readonly string? _trustNetwork;
    private string _bin = "";
    private bool _running;

    public PostgresServer()
        : this("127.0.0.1", null)
    {
    }

    /// <summary>
    /// A server listening on <paramref name="host"/> (an address of this machine) that also lets clients from
    /// <paramref name="trustNetwork"/> (CIDR, e.g. nodes in network namespaces) in without a password. (A factory,
    /// not a second public constructor: xunit creates fixtures only from a type with one public constructor.)
    /// </summary>
    public static PostgresServer Listening(string host, string? trustNetwork) => new(host, trustNetwork);

    private PostgresServer(string host, string? trustNetwork)
    {
        Host = host;
        _trustNetwork = trustNetwork;
    }

    public int Port { get; } = InteropEnvironment.FreePort();

    public string Host { get; }

    /// <summary>The connection string of the <c>broker</c> database.</summary>
    public string ConnectionString => ConnectionStringFor("broker");

    private string DataDir => Path.Combine(_dir, "data");

    private static bool IsRoot => Environment.UserName == "root";

    public string ConnectionStringFor(string database) =>
        $"Host={Host};Port={Port};Database={database};Username=postgres";

    public async Task InitializeAsync()
    {
        _bin = FindBinaries() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/<version>/bin/initdb): install the Debian package " +
            "'postgresql' (Broker.Tests/run-tests.sh does so when run as root)");
        if (IsRoot)
        {
            await ExternalProcess.RunAsync("chown", ["-R", "postgres:postgres", _dir], CommandTimeout);
        }

        await RunAsPostgresAsync("initdb", "-D", DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions");
        if (_trustNetwork is not null)
        {
            await File.AppendAllTextAsync(Path.Combine(DataDir, "pg_hba.conf"), $"\nhost all all {_trustNetwork} trust\n");
        }

        await StartAsync();
        await CreateDatabaseAsync("broker");
    }

    /// <summary>Creates an empty database (so each spec can start from empty storage) and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        // No pooling: a pooled connection would be dead after StopAsync/StartAsync (57P01 on first use).
        await using var connection = new NpgsqlConnection(ConnectionStringFor("postgres") + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"CREATE DATABASE \"{name}\"";
        await command.ExecuteNonQueryAsync();
        return ConnectionStringFor(name);
    }

    /// <summary>Writes a plain-SQL dump (schema and rows) of <paramref name="database"/> to <paramref name="file"/> (failure evidence).</summary>
    public Task DumpAsync(string database, string file) =>
        ExternalProcess.RunAsync(Path.Combine(_bin, "pg_dump"),
            ["-h", Host, "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", "-d", database, "-f", file],
            CommandTimeout);

    /// <summary>Starts the server (again) on the same data directory and port; returns once it accepts connections.</summary>
    public async Task StartAsync()
    {
        await RunAsPostgresAsync(
            "pg_ctl", "-D", DataDir, "-l", Path.Combine(_dir, "postgres.log"), "-w", "-t", "30",
            "-o", $"-c listen_addresses={Host} -p {Port} -k {_dir}", "start");
        _running = true;
    }

    /// <summary>Stops the server (fast shutdown: open connections are cut, committed data stays).</summary>
    public async Task StopAsync()
    {
        _running = false;
        await RunAsPostgresAsync("pg_ctl", "-D", DataDir, "-m", "fast", "-w", "-t", "30", "stop");
    }

    /// <summary>The server's own log (for failure reports).</summary>
    public string Log()
    {
        try
        {
            return File.ReadAllText(Path.Combine(_dir, "postgres.log"));
        }
        catch (IOException)
        {
            return "";
        }
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_running)
            {
                await StopAsync();
            }
        }
        finally
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string? FindBinaries() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin"))
                .Where(bin => File.Exists(Path.Combine(bin, "initdb")) && File.Exists(Path.Combine(bin, "pg_ctl")))
                .OrderByDescending(bin => int.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), out var v) ? v : 0)
                .FirstOrDefault()
            : null;

    private Task RunAsPostgresAsync(string tool, params string[] args)
    {
        var path = Path.Combine(_bin, tool);
        return IsRoot
            ? ExternalProcess.RunAsync("runuser", ["-u", "postgres", "--", path, .. args], CommandTimeout)
            : ExternalProcess.RunAsync(path, args, CommandTimeout);
    }
}

/// <summary>The specs that share the throwaway PostgreSQL server; they run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
