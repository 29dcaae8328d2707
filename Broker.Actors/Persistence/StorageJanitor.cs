using System.Data.Common;
using Broker.Configuration;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Broker.Persistence;

/// <summary>
/// Plain SQL over the plugin's tables (default mapping: <c>journal</c>, <c>snapshot</c>), for the two things the
/// Akka persistence API does not offer:
/// <list type="bullet">
/// <item>which entities have live state (so that after a restart every stored session can be woken: its expiry
/// clock runs again and its wildcard routes are re-announced, since those live in memory, in DistributedData);</item>
/// <item>purging rows of entities that ended: Akka.Persistence.Sql only marks deleted events and keeps the highest
/// one, so without this every abandoned client id would leave rows behind forever.</item>
/// </list>
/// </summary>
public sealed class StorageJanitor(BrokerOptions options)
{
    private const string LiveIds = """
        SELECT persistence_id FROM journal WHERE deleted = false
        UNION
        SELECT persistence_id FROM snapshot
        """;

    private const string LiveIdsWithPrefix = """
        SELECT persistence_id FROM journal WHERE deleted = false AND persistence_id LIKE @prefix
        UNION
        SELECT persistence_id FROM snapshot WHERE persistence_id LIKE @prefix
        """;

    private const string Purge = """
        DELETE FROM journal
        WHERE deleted = true
          AND persistence_id NOT IN (SELECT persistence_id FROM journal WHERE deleted = false)
          AND persistence_id NOT IN (SELECT persistence_id FROM snapshot)
        """;

    public Task<IReadOnlyList<string>> LiveEntityIdsAsync(CancellationToken ct = default) => QueryIdsAsync(LiveIds, null, ct);

    /// <summary>Persistence ids starting with <paramref name="prefix"/> (e.g. "session-") that have something stored.</summary>
    public Task<IReadOnlyList<string>> LiveIdsWithPrefixAsync(string prefix, CancellationToken ct = default) =>
        QueryIdsAsync(LiveIdsWithPrefix, prefix + "%", ct);

    /// <summary>Which of <paramref name="persistenceIds"/> have something stored (indexed look-ups).</summary>
    public async Task<IReadOnlyList<string>> LiveAmongAsync(IReadOnlyList<string> persistenceIds, CancellationToken ct = default)
    {
        var found = new List<string>();
        if (persistenceIds.Count == 0)
        {
            return found;
        }

        await using var connection = Open();
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        var list = BindIds(command, persistenceIds);
        command.CommandText =
            $"SELECT DISTINCT persistence_id FROM journal WHERE deleted = false AND persistence_id IN ({list}) " +
            $"UNION SELECT persistence_id FROM snapshot WHERE persistence_id IN ({list})";
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            found.Add(reader.GetString(0));
        }

        return found;
    }

    private async Task<IReadOnlyList<string>> QueryIdsAsync(string sql, string? pattern, CancellationToken ct)
    {
        await using var connection = Open();
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        if (pattern is not null)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@prefix";
            parameter.Value = pattern;
            command.Parameters.Add(parameter);
        }

        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    /// <summary>Removes the leftover rows of ended entities; returns how many rows went.</summary>
    public async Task<int> PurgeEndedAsync(CancellationToken ct = default)
    {
        await using var connection = Open();
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = Purge;
        return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private DbConnection Open() => Connection(options);

    /// <summary>A new (unopened) connection to the configured storage.</summary>
    internal static DbConnection Connection(BrokerOptions options) => StorageSetup.IsSqlite(options)
        ? new SqliteConnection(StorageSetup.ConnectionString(options))
        : new NpgsqlConnection(StorageSetup.ConnectionString(options));

    /// <summary>Binds <paramref name="ids"/> as parameters @p0, @p1, ... of <paramref name="command"/>; returns the list for an IN (...).</summary>
    internal static string BindIds(DbCommand command, IReadOnlyList<string> ids)
    {
        var names = new string[ids.Count];
        for (var i = 0; i < ids.Count; i++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = names[i] = "@p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            parameter.Value = ids[i];
            command.Parameters.Add(parameter);
        }

        return string.Join(", ", names);
    }
}
