using System.Diagnostics;
using System.Text;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Broker.LoadTests;

/// <summary>
/// The physical limit of the journal's storage on this machine: rows shaped like the broker's journal rows (same
/// columns, indexes and sizes) inserted with plain batched multi-row INSERTs, one transaction per batch, by a number
/// of parallel writers, into a scratch table of the same database. No actors, no Akka.Persistence: what the durable
/// path is compared against.
/// <code>
///   Broker.LoadTests journal-limit sqlite:/tmp/x.db|postgres:&lt;connection string&gt; [rows] [batch] [writers] [messageBytes]
/// </code>
/// </summary>
public static class JournalInsertLimit
{
    private const string Columns = "(created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid)";

    public static async Task<int> RunAsync(string target, int rows, int batch, int writers, int messageBytes)
    {
        var sqlite = target.StartsWith("sqlite:", StringComparison.Ordinal);
        var connection = target[(target.IndexOf(':') + 1)..];
        var open = sqlite
            ? (Func<Task<System.Data.Common.DbConnection>>)(async () =>
            {
                var c = new SqliteConnection($"Data Source={connection}");
                await c.OpenAsync();
                using var wal = c.CreateCommand();
                wal.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;";
                await wal.ExecuteNonQueryAsync();
                return c;
            })
            : async () =>
            {
                var c = new NpgsqlConnection(connection);
                await c.OpenAsync();
                return c;
            };

        await using (var setup = await open())
        {
            using var create = setup.CreateCommand();
            create.CommandText = sqlite
                ? """
                  DROP TABLE IF EXISTS journal_limit;
                  CREATE TABLE journal_limit (ordering INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL,
                    deleted INTEGER NOT NULL, persistence_id TEXT NOT NULL, sequence_number INTEGER NOT NULL,
                    message BLOB NOT NULL, manifest TEXT, identifier INTEGER, writer_uuid TEXT,
                    UNIQUE (persistence_id, sequence_number));
                  CREATE INDEX journal_limit_seq ON journal_limit (sequence_number);
                  CREATE INDEX journal_limit_created ON journal_limit (created);
                  """
                : """
                  DROP TABLE IF EXISTS journal_limit;
                  CREATE TABLE journal_limit (ordering bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created bigint NOT NULL,
                    deleted boolean NOT NULL, persistence_id text NOT NULL, sequence_number bigint NOT NULL,
                    message bytea NOT NULL, manifest text, identifier integer, writer_uuid text,
                    UNIQUE (persistence_id, sequence_number));
                  CREATE INDEX journal_limit_seq ON journal_limit (sequence_number);
                  CREATE INDEX journal_limit_created ON journal_limit (created);
                  """;
            await create.ExecuteNonQueryAsync();
        }

        var message = new string('a', messageBytes * 2); // hex digits of the bytes
        var next = 0L;
        var watch = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, writers).Select(async w =>
        {
            await using var c = await open();
            var sql = new StringBuilder();
            while (true)
            {
                var first = Interlocked.Add(ref next, batch) - batch;
                if (first >= rows)
                {
                    return;
                }

                var count = (int)Math.Min(batch, rows - first);
                sql.Clear().Append("INSERT INTO journal_limit ").Append(Columns).Append(" VALUES ");
                var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                for (var i = 0; i < count; i++)
                {
                    var seq = first + i;
                    sql.Append(i == 0 ? "(" : ",(").Append(now).Append(sqlite ? ",0,'session-" : ",false,'session-")
                        .Append(seq % 1000).Append("',").Append(seq).Append(',')
                        .Append(sqlite ? "X'" : "'\\x").Append(message).Append("','se-q',4711,'44f90101f9f84f5395818d2b6881fb7e')");
                }

                await using var tx = await c.BeginTransactionAsync();
                using var insert = c.CreateCommand();
                insert.Transaction = tx;
                insert.CommandText = sql.ToString();
                await insert.ExecuteNonQueryAsync();
                await tx.CommitAsync();
            }
        }).ToArray();
        await Task.WhenAll(tasks);
        watch.Stop();

        await using (var cleanup = await open())
        {
            using var drop = cleanup.CreateCommand();
            drop.CommandText = "DROP TABLE journal_limit";
            await drop.ExecuteNonQueryAsync();
        }

        Console.WriteLine(
            $"journal-limit {(sqlite ? "sqlite" : "postgres")}: {rows} rows of {messageBytes} B, batch {batch}, {writers} writer(s): " +
            $"{watch.Elapsed.TotalSeconds:F2} s = {rows / watch.Elapsed.TotalSeconds:F0} rows/s");
        return 0;
    }
}
