using System.Data.Common;
using Broker.Configuration;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Broker.Persistence;

/// <summary>
/// Three small tables beside the journal that let a node start without waking its stored entities:
/// <list type="bullet">
/// <item><c>broker_wildcard_route</c>: the wildcard filters of persistent sessions (routes otherwise live only in
/// memory, replicated by DistributedData); read in one query at start-up into the wildcard index.</item>
/// <item><c>broker_session_expiry</c>: one deadline per stored persistent session, never later than the moment it
/// really expires; the <see cref="ExpirySweeper"/> reads the due ones and wakes only those.</item>
/// <item><c>broker_retained_topic</c>: the topics that hold a retained message, read at start-up into the
/// retained index (the messages stay in their topic entities' journals).</item>
/// </list>
/// The journal stays the truth: a row here only says whom to wake or where to route; the woken entity recovers from
/// its journal and corrects or deletes its row. With SQLite the tables live in a file of their own beside the journal
/// (<see cref="SqliteConnectionString"/>); with PostgreSQL in the journal's database.
/// </summary>
public sealed class SessionIndex(BrokerOptions options)
{
    private const string Create = """
        CREATE TABLE IF NOT EXISTS broker_wildcard_route (client_id VARCHAR(65535) NOT NULL, filter VARCHAR(65535) NOT NULL, PRIMARY KEY (client_id, filter));
        CREATE TABLE IF NOT EXISTS broker_session_expiry (client_id VARCHAR(65535) NOT NULL PRIMARY KEY, expires_at_ms BIGINT NOT NULL);
        CREATE INDEX IF NOT EXISTS broker_session_expiry_at ON broker_session_expiry (expires_at_ms);
        CREATE TABLE IF NOT EXISTS broker_retained_topic (topic VARCHAR(65535) NOT NULL PRIMARY KEY);
        """;

    /// <summary>Creates the tables when missing (idempotent; several nodes may do it at once).</summary>
    public async Task EnsureCreatedAsync(CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = Create;
        try
        {
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is "23505" or "42P07")
        {
            // Another node created them at the same moment (CREATE ... IF NOT EXISTS is not atomic in PostgreSQL).
        }
    }

    /// <summary>Every (client id, session filter) of the wildcard routes of persistent sessions.</summary>
    public async Task<IReadOnlyList<(string ClientId, string Filter)>> WildcardRoutesAsync(CancellationToken ct = default)
    {
        var rows = new List<(string, string)>();
        await using var connection = await OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT client_id, filter FROM broker_wildcard_route";
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add((reader.GetString(0), reader.GetString(1)));
        }

        return rows;
    }

    public async Task<IReadOnlyList<string>> RetainedTopicsAsync(CancellationToken ct = default)
    {
        var rows = new List<string>();
        await using var connection = await OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT topic FROM broker_retained_topic";
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    /// <summary>Client ids whose deadline is at or before <paramref name="untilMs"/> (Unix ms), earliest first.</summary>
    public async Task<IReadOnlyList<string>> DueSessionsAsync(long untilMs, int limit, CancellationToken ct = default)
    {
        var rows = new List<string>();
        await using var connection = await OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT client_id FROM broker_session_expiry WHERE expires_at_ms <= @until ORDER BY expires_at_ms LIMIT @limit";
        Add(command, "@until", untilMs);
        Add(command, "@limit", limit);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    /// <summary>Applies the changes in order, in one transaction.</summary>
    public async Task ApplyAsync(IReadOnlyList<SessionIndexChange> changes, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        foreach (var change in changes)
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            switch (change.Kind)
            {
                case SessionIndexChangeKind.AddRoute:
                    command.CommandText = "INSERT INTO broker_wildcard_route (client_id, filter) VALUES (@c, @k) ON CONFLICT DO NOTHING";
                    break;
                case SessionIndexChangeKind.RemoveRoute:
                    command.CommandText = "DELETE FROM broker_wildcard_route WHERE client_id = @c AND filter = @k";
                    break;
                case SessionIndexChangeKind.RemoveSession:
                    command.CommandText = "DELETE FROM broker_wildcard_route WHERE client_id = @c; DELETE FROM broker_session_expiry WHERE client_id = @c";
                    break;
                case SessionIndexChangeKind.RemoveRoutes:
                    command.CommandText = "DELETE FROM broker_wildcard_route WHERE client_id = @c";
                    break;
                case SessionIndexChangeKind.SetDeadline:
                    command.CommandText = """
                        INSERT INTO broker_session_expiry (client_id, expires_at_ms) VALUES (@c, @at)
                        ON CONFLICT (client_id) DO UPDATE SET expires_at_ms = excluded.expires_at_ms
                        """;
                    Add(command, "@at", change.AtMs);
                    break;
                case SessionIndexChangeKind.RemoveDeadline:
                    command.CommandText = "DELETE FROM broker_session_expiry WHERE client_id = @c";
                    break;
                case SessionIndexChangeKind.AddRetained:
                    command.CommandText = "INSERT INTO broker_retained_topic (topic) VALUES (@c) ON CONFLICT DO NOTHING";
                    break;
                case SessionIndexChangeKind.RemoveRetained:
                    command.CommandText = "DELETE FROM broker_retained_topic WHERE topic = @c";
                    break;
            }

            Add(command, "@c", change.Key);
            if (command.CommandText.Contains("@k", StringComparison.Ordinal))
            {
                Add(command, "@k", change.Filter ?? "");
            }

            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await transaction.CommitAsync(ct).ConfigureAwait(false);
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        DbConnection connection = StorageSetup.IsSqlite(options)
            ? new SqliteConnection(SqliteConnectionString(options))
            : new NpgsqlConnection(StorageSetup.ConnectionString(options));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        if (connection is SqliteConnection)
        {
            await using var wal = connection.CreateCommand();
            wal.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
            await wal.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return connection;
    }

    /// <summary>
    /// SQLite: a file of its own beside the journal's (broker.db → broker-index.db). SQLite has one writer per file,
    /// and a second writer makes the journal's writes meet a busy file, which Microsoft.Data.Sqlite retries only after
    /// sleeping (measured: resumes fell to a few dozen per second); with two files neither waits for the other.
    /// </summary>
    public static string SqliteConnectionString(BrokerOptions options)
    {
        var builder = new SqliteConnectionStringBuilder(StorageSetup.ConnectionString(options));
        var path = Path.GetFullPath(builder.DataSource);
        builder.DataSource = Path.Combine(Path.GetDirectoryName(path) ?? ".",
            Path.GetFileNameWithoutExtension(path) + "-index" + Path.GetExtension(path));
        return builder.ToString();
    }
}

public enum SessionIndexChangeKind
{
    AddRoute,
    RemoveRoute,
    RemoveRoutes,
    RemoveSession,
    SetDeadline,
    RemoveDeadline,
    AddRetained,
    RemoveRetained,
}

/// <summary>One change of the <see cref="SessionIndex"/> tables; <see cref="Key"/> is a client id or (retained) a topic.</summary>
public readonly record struct SessionIndexChange(SessionIndexChangeKind Kind, string Key, string? Filter = null, long AtMs = 0)
{
    public static SessionIndexChange AddRoute(string clientId, string filter) => new(SessionIndexChangeKind.AddRoute, clientId, filter);

    public static SessionIndexChange RemoveRoute(string clientId, string filter) => new(SessionIndexChangeKind.RemoveRoute, clientId, filter);

    /// <summary>The session's wildcard routes go (Clean Start: the session starts over).</summary>
    public static SessionIndexChange RemoveRoutes(string clientId) => new(SessionIndexChangeKind.RemoveRoutes, clientId);

    /// <summary>The session ended: its routes and its deadline go.</summary>
    public static SessionIndexChange RemoveSession(string clientId) => new(SessionIndexChangeKind.RemoveSession, clientId);

    public static SessionIndexChange SetDeadline(string clientId, long atMs) => new(SessionIndexChangeKind.SetDeadline, clientId, null, atMs);

    public static SessionIndexChange RemoveDeadline(string clientId) => new(SessionIndexChangeKind.RemoveDeadline, clientId);

    public static SessionIndexChange Retained(string topic, bool has) =>
        new(has ? SessionIndexChangeKind.AddRetained : SessionIndexChangeKind.RemoveRetained, topic);
}
