using System.Data.Common;
using System.Globalization;
using Akka.Actor;
using Akka.Event;
using Broker.Cluster;
using Broker.Configuration;
using Microsoft.Data.Sqlite;

namespace Broker.Persistence;

/// <summary>
/// Reads what stored sessions recover from (their latest snapshot and the events after it) for many sessions in one
/// statement over the plugin's tables, instead of Akka.Persistence's recovery per session (a snapshot query, a
/// highest-sequence-number query and an event replay, each in its own transaction, the replay through a stream graph
/// materialized per session, the SQL text built again by linq2db each time: about 2 ms of CPU per session).
/// <para>
/// It reads exactly what that recovery replays: the snapshot with the highest sequence number, then the events above
/// it not marked deleted, in sequence order (a <see cref="JournalBatch"/> row replays as its events), deserialized
/// by the serializer each row names; snapshot and events come from one statement, so from one consistent state. The
/// same statement returns each session's highest sequence number as the plugin reads it (rows marked deleted
/// included, and the plugin's metadata table where it exists): the session's <see cref="EntityJournal"/> starts
/// later, on its first write, numbering after it without a query of its own. Only this node writes for a session
/// whose shard it hosts, and the session has not started its journal yet, so nothing is written between this read
/// and that start.
/// </para>
/// <para>
/// A journal that starts without replay (the first write of a topic or session that has nothing stored, or of one
/// restored from a kept state) asks it too, for the highest sequence number alone: many new topics subscribed to at
/// once (devices that each subscribe to their own command topic) cost one statement per batch instead of Akka's
/// recovery each.
/// </para>
/// <code>
///   session starts ─► ReadStoredState ─► gathered while a batch is on its way ─► one SELECT ... IN (ids) ─► StoredState each
/// </code>
/// </summary>
public sealed class StoredStateReader : ReceiveActor
{
    public const string Name = "stored-state-reader";
    private const int MaxBatch = 200;
    private const int MaxInFlight = 2;
    private readonly BrokerOptions _options;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<(ReadStoredState Ask, IActorRef ReplyTo)> _waiting = new();
    private int _inFlight;
    private bool? _hasMetadataTable; // Akka.Persistence.Sql's journal_metadata (written only in its delete-compatibility mode)

    public StoredStateReader(BrokerOptions options)
    {
        _options = options;
        _serialization = Context.System.Serialization;
        Receive<ReadStoredState>(r =>
        {
            _waiting.Add((r, Sender));
            StartBatch();
        });
        Receive<BatchRead>(done =>
        {
            _inFlight--;
            foreach (var (ask, replyTo) in done.Asks)
            {
                if (done.Error is not null)
                {
                    replyTo.Tell(new StoredState(null, [], done.Error, 0));
                }
                else
                {
                    done.States!.TryGetValue(ask.PersistenceId, out var state);
                    replyTo.Tell(state ?? new StoredState(null, [], null, 0)); // no row at all: numbering starts at 1
                }
            }

            if (done.Error is not null)
            {
                _log.Warning("Could not read the stored state of {0} entities: {1}", done.Asks.Count, done.Error.GetBaseException().Message);
            }

            StartBatch();
        });
    }

    public static Props Props(BrokerOptions options) => Akka.Actor.Props.Create(() => new StoredStateReader(options));

    private void StartBatch()
    {
        if (_inFlight >= MaxInFlight || _waiting.Count == 0)
        {
            return;
        }

        var batch = _waiting.GetRange(0, Math.Min(MaxBatch, _waiting.Count));
        _waiting.RemoveRange(0, batch.Count);
        _inFlight++;
        var ids = batch.Select(b => b.Ask.PersistenceId).Distinct().ToList();
        // Ids that only a journal asked for need their number alone: their rows are not deserialized.
        var withState = batch.Where(b => !b.Ask.NumberOnly).Select(b => b.Ask.PersistenceId).ToHashSet(StringComparer.Ordinal);
        Task.Run(() => ReadAsync(ids, withState)).PipeTo(
            Self,
            success: states => new BatchRead(batch, states, null),
            failure: e => new BatchRead(batch, null, e));
    }

    private async Task<Dictionary<string, StoredState>> ReadAsync(IReadOnlyList<string> persistenceIds, HashSet<string> withState)
    {
        await using var connection = StorageJanitor.Connection(_options);
        await connection.OpenAsync().ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        var list = StorageJanitor.BindIds(command, persistenceIds);
        _hasMetadataTable ??= await TableExistsAsync(connection, "journal_metadata").ConfigureAwait(false);
        command.CommandText =
            $"SELECT 0, persistence_id, sequence_number, snapshot, serializer_id, manifest FROM snapshot WHERE persistence_id IN ({list}) " +
            $"UNION ALL SELECT 1, persistence_id, sequence_number, message, identifier, manifest FROM journal " +
            $"WHERE deleted = false AND persistence_id IN ({list}) " +
            // The highest sequence number of each, rows marked deleted included (the plugin keeps the highest
            // deleted row, so that numbering continues after it), as the plugin's own query reads it.
            $"UNION ALL SELECT 2, persistence_id, MAX(sequence_number), NULL, NULL, NULL FROM journal " +
            $"WHERE persistence_id IN ({list}) GROUP BY persistence_id" +
            (_hasMetadataTable == true
                ? $" UNION ALL SELECT 2, persistence_id, MAX(sequence_number), NULL, NULL, NULL FROM journal_metadata " +
                  $"WHERE persistence_id IN ({list}) GROUP BY persistence_id"
                : "");

        var rows = new Dictionary<string, Rows>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                var persistenceId = reader.GetString(1);
                if (!rows.TryGetValue(persistenceId, out var r))
                {
                    rows[persistenceId] = r = new Rows();
                }

                var kind = Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture);
                if (kind == 2)
                {
                    r.Highest = Math.Max(r.Highest, Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture));
                    continue;
                }

                var row = (Seq: reader.GetInt64(2), Data: (byte[])reader.GetValue(3),
                    Serializer: reader.IsDBNull(4) ? (int?)null : Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture),
                    Manifest: reader.IsDBNull(5) ? "" : reader.GetString(5));
                if (kind == 0)
                {
                    if (r.Snapshot is null || row.Seq > r.Snapshot.Value.Seq)
                    {
                        r.Snapshot = row;
                    }
                }
                else
                {
                    r.Events.Add(row);
                }
            }
        }

        var states = new Dictionary<string, StoredState>(StringComparer.Ordinal);
        foreach (var (persistenceId, r) in rows)
        {
            // As Akka's recovery: the highest of the journal's (and metadata's) and the snapshot's sequence numbers.
            var snapshotSeq = r.Snapshot?.Seq ?? 0;
            var highest = Math.Max(r.Highest, snapshotSeq);
            if (!withState.Contains(persistenceId))
            {
                states[persistenceId] = new StoredState(null, [], null, highest);
                continue;
            }

            var snapshot = r.Snapshot is { } s ? Deserialize(s) : null;
            var events = new List<object>();
            foreach (var e in r.Events.Where(e => e.Seq > snapshotSeq).OrderBy(e => e.Seq))
            {
                var stored = Deserialize(e);
                if (stored is JournalBatch batch)
                {
                    events.AddRange(batch.Events);
                }
                else
                {
                    events.Add(stored);
                }
            }

            states[persistenceId] = new StoredState(snapshot, events, null, highest);
        }

        return states;
    }

    private static async Task<bool> TableExistsAsync(DbConnection connection, string table)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = connection is SqliteConnection
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = @t"
            : "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = @t";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@t";
        parameter.Value = table;
        command.Parameters.Add(parameter);
        return Convert.ToInt64(await command.ExecuteScalarAsync().ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;
    }

    private object Deserialize((long Seq, byte[] Data, int? Serializer, string Manifest) row) =>
        row.Serializer is { } id
            ? _serialization.Deserialize(row.Data, id, row.Manifest)
            : throw new InvalidOperationException($"a stored row (sequence number {row.Seq}) names no serializer");

    private sealed class Rows
    {
        public (long Seq, byte[] Data, int? Serializer, string Manifest)? Snapshot;
        public readonly List<(long Seq, byte[] Data, int? Serializer, string Manifest)> Events = new();
        public long Highest;
    }

    private sealed record BatchRead(List<(ReadStoredState Ask, IActorRef ReplyTo)> Asks, Dictionary<string, StoredState>? States, Exception? Error);
}

/// <summary>
/// Read the latest snapshot and the events after it of this persistence id; answered with <see cref="StoredState"/>.
/// <paramref name="NumberOnly"/>: only the highest sequence number is wanted (a journal starting without replay), and
/// the answer carries no snapshot or events.
/// </summary>
public sealed record ReadStoredState(string PersistenceId, bool NumberOnly = false) : INoSerializationVerificationNeeded;

/// <summary>
/// What a recovery would replay (nothing when <see cref="Error"/> is set: the read failed), and the highest sequence
/// number stored for the persistence id (rows marked deleted included), after which the journal numbers.
/// </summary>
public sealed record StoredState(object? Snapshot, IReadOnlyList<object> Events, Exception? Error, long HighestSequenceNr) : INoSerializationVerificationNeeded;
