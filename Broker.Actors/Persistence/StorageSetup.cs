using LinqToDB;
using Broker.Configuration;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Broker.Persistence;

/// <summary>Storage could not be used; the message names the provider and the target and says what is wrong.</summary>
public sealed class StorageUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The journal and snapshot store (Akka.Persistence.Sql over linq2db): SQLite in Node:DataDir by default, PostgreSQL
/// for a cluster. Tables are created automatically by the plugin. Before the actor system starts, the database is
/// opened once so that a missing server, a corrupt file or somebody else's database stops start-up with one clear
/// line instead of failing later, or worse, being silently reset.
/// </summary>
public static class StorageSetup
{
    public static bool IsSqlite(BrokerOptions o) => o.Storage.Provider == "sqlite";

    public static string ConnectionString(BrokerOptions o)
    {
        if (!IsSqlite(o))
        {
            return BoundIdleTransactions(o.Storage.ConnectionString);
        }

        if (!string.IsNullOrWhiteSpace(o.Storage.ConnectionString))
        {
            return o.Storage.ConnectionString;
        }

        // Pooling on: the plugin opens a connection per query and per write batch; without a pool each one re-opens the
        // file and re-reads the schema, which made a CONNECT (a session recovery: two queries) cost about 6 ms and
        // serialized connect storms on the file.
        var path = Path.GetFullPath(Path.Combine(o.Node.DataDir, "broker.db"));
        return new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
    }

    /// <summary>
    /// How long PostgreSQL lets a session of this node sit idle inside a transaction before it ends that session.
    /// The journal writes each batch in a transaction (BEGIN, INSERT, COMMIT); a node that stops between its INSERT and
    /// its COMMIT (SIGSTOP, a frozen VM, cut off from the database) keeps the rows it inserted locked, and the next
    /// incarnation of its sessions on another node, which writes the same sequence numbers, blocks on them until the
    /// old transaction ends: for as long as the pause lasts (measured: a 20 s pause of the node hosting the written
    /// sessions held publishers on the other nodes for 20 s). Ended after 5 s, the stale transaction rolls back
    /// (nothing in it was confirmed to anyone) before the others can have removed the node (failure detection,
    /// stable-after and the removal margin: about 8 s) and started its sessions elsewhere. A connection string that
    /// sets Options itself keeps them as they are.
    /// </summary>
    public static readonly TimeSpan IdleTransactionLimit = TimeSpan.FromSeconds(5);

    private static string BoundIdleTransactions(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!string.IsNullOrWhiteSpace(builder.Options))
        {
            return connectionString;
        }

        builder.Options = $"-c idle_in_transaction_session_timeout={(int)IdleTransactionLimit.TotalMilliseconds}";
        return builder.ConnectionString;
    }

    /// <summary>The target named in error messages (file path or host:port/database), without secrets.</summary>
    public static string Describe(BrokerOptions o)
    {
        try
        {
            if (IsSqlite(o))
            {
                return "sqlite file " + new SqliteConnectionStringBuilder(ConnectionString(o)).DataSource;
            }

            var b = new NpgsqlConnectionStringBuilder(o.Storage.ConnectionString);
            return $"postgresql at {b.Host}:{b.Port}/{b.Database}";
        }
        catch (ArgumentException)
        {
            return $"{o.Storage.Provider} (unparsable connection string)";
        }
    }

    public static async Task VerifyAsync(BrokerOptions o, CancellationToken ct = default)
    {
        if (IsSqlite(o))
        {
            VerifySqlite(o);
            return;
        }

        try
        {
            await using var connection = new NpgsqlConnection(o.Storage.ConnectionString);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await connection.OpenAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or ArgumentException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            throw new StorageUnavailableException($"Storage unreachable: {Describe(o)}: {e.GetBaseException().Message}", e);
        }
    }

    private static void VerifySqlite(BrokerOptions o)
    {
        var builder = new SqliteConnectionStringBuilder(ConnectionString(o));
        var directory = Path.GetDirectoryName(Path.GetFullPath(builder.DataSource));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        try
        {
            using var connection = new SqliteConnection(builder.ToString());
            connection.Open();
            using (var check = connection.CreateCommand())
            {
                // Fails with "file is not a database" for a foreign or corrupt file; never recreated silently.
                check.CommandText = "PRAGMA quick_check;";
                var result = check.ExecuteScalar() as string;
                if (result != "ok")
                {
                    throw new StorageUnavailableException($"Storage corrupt: {Describe(o)}: integrity check says '{result}'");
                }
            }

            var tables = new List<string>();
            using (var list = connection.CreateCommand())
            {
                list.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%';";
                using var reader = list.ExecuteReader();
                while (reader.Read())
                {
                    tables.Add(reader.GetString(0));
                }
            }

            if (tables.Count > 0 && !tables.Contains("journal"))
            {
                throw new StorageUnavailableException(
                    $"Storage foreign: {Describe(o)} holds tables ({string.Join(", ", tables)}) but no broker journal; " +
                    "point Storage:ConnectionString or Node:DataDir elsewhere");
            }

            using var wal = connection.CreateCommand();
            // WAL lets recovery reads run beside journal writes; NORMAL sync is durable at each commit in WAL mode
            // except against power loss (not against a killed process, which is what the promise covers).
            wal.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
            wal.ExecuteNonQuery();
        }
        catch (SqliteException e)
        {
            throw new StorageUnavailableException($"Storage unusable: {Describe(o)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// SQLite only: every connection the journal and snapshot store open waits for the file's write lock inside SQLite
    /// (PRAGMA busy_timeout: short sleeps of 1 to 100 ms) instead of getting SQLITE_BUSY at once, which
    /// Microsoft.Data.Sqlite answers by sleeping 150 ms before it tries again. The journal's writes, its deletions after
    /// a snapshot and the snapshot store's writes are separate connections to one file, so they meet that lock often;
    /// each such meeting cost a stored message 150 ms (PUBACK p99 of 150–300 ms on SQLite). Null for PostgreSQL.
    /// </summary>
    public static Akka.Persistence.Sql.Config.DataOptionsSetup? DataOptions(BrokerOptions o)
    {
        if (!IsSqlite(o))
        {
            return null;
        }

        const string busy = "PRAGMA busy_timeout = 30000;";
        var options = new DataOptions()
            .UseConnectionString("SQLite.MS", ConnectionString(o))
            .UseAfterConnectionOpened(
                connection =>
                {
                    using var command = connection.CreateCommand();
                    command.CommandText = busy;
                    command.ExecuteNonQuery();
                },
                async (connection, ct) =>
                {
                    await using var command = connection.CreateCommand();
                    command.CommandText = busy;
                    await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                });
        return new Akka.Persistence.Sql.Config.DataOptionsSetup(options);
    }

    /// <summary>The persistence part of the node's HOCON.</summary>
    public static string Hocon(BrokerOptions o)
    {
        var provider = IsSqlite(o) ? "SQLite.MS" : "PostgreSQL.15";
        var connection = ConnectionString(o).Replace("\\", "\\\\").Replace("\"", "\\\"");

        // SQLite takes one writer at a time: more parallel writers only queue on its lock.
        var parallelism = IsSqlite(o) ? 1 : 3;

        // The plugin runs every read (snapshot load, highest sequence number, replay) in a transaction of
        // read-isolation-level. "unspecified" is Serializable to Microsoft.Data.Sqlite, which begins it with BEGIN
        // IMMEDIATE: the file's write lock. Every session recovery then queued on the single writer behind the journal's
        // write batches (and, before busy_timeout was set, slept 150 ms in the driver's busy loop each time it found the
        // lock taken: recoveries took 150, 300, 450 ms... and resumes ran at 25-150/s whatever the number of clients).
        // Read-uncommitted is a deferred BEGIN: in WAL mode a reader takes no lock and reads the last committed state
        // (read_uncommitted only matters with a shared cache, which is not used here).
        var readIsolation = IsSqlite(o) ? "read-uncommitted" : "unspecified";

        // Microsoft.Data.Sqlite has no asynchronous I/O: its async calls run the statement (and the commit) on the
        // calling thread. The plugin's write stream runs on its materializer's dispatcher, by default the actors' one,
        // so each journal batch held a thread of the pool every actor runs on (a storm profile: about one thread's
        // worth), and a publisher's PUBACK path waited behind it. Its own two threads keep that wait off the actors.
        // Npgsql is asynchronous: PostgreSQL keeps the default.
        var materializer = IsSqlite(o) ? "broker-storage-dispatcher" : "akka.actor.default-dispatcher";
        return $$"""
        broker-storage-dispatcher {
          type = ForkJoinDispatcher
          throughput = 100
          dedicated-thread-pool {
            thread-count = 2
            threadtype = background
          }
        }
        akka.persistence {
          journal {
            plugin = "akka.persistence.journal.sql"
            sql {
              connection-string = "{{connection}}"
              provider-name = "{{provider}}"
              auto-initialize = true
              parallelism = {{parallelism}}
              batch-size = 200        # default 100: fan-out to many persistent sessions writes in larger batches
              read-isolation-level = {{readIsolation}}
              materializer-dispatcher = "{{materializer}}"
              # default repair-by-discard-old: on replay, drops the events a writer stored after another writer's.
              # The plugin stamps events with its own writer id, one per node, so a session that moved to its client's
              # node and back (or a node that stood still while another took its sessions over) leaves such events,
              # and each may have been confirmed to a client. The table's key (persistence id, sequence number) lets
              # one row per number in, so what is stored is one line: replay all of it, as the batched reads do.
              replay-filter.mode = off
            }
          }
          snapshot-store {
            plugin = "akka.persistence.snapshot-store.sql"
            sql {
              connection-string = "{{connection}}"
              provider-name = "{{provider}}"
              auto-initialize = true
              read-isolation-level = {{readIsolation}}
            }
          }
        }
        """;
    }
}
