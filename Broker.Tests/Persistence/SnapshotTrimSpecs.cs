using Akka.Actor;
using Broker.Cluster;
using Broker.Configuration;
using Broker.Persistence;
using Broker.Sessions;
using Broker.Tests.EndToEnd;
using Microsoft.Data.Sqlite;

namespace Broker.Tests.Persistence;

/// <summary>
/// What a snapshot covers is deleted even when the entity stops right after asking for it: its journal child stops
/// with it before the snapshot store confirms the snapshot, and the node deletes the covered rows on that
/// confirmation anyway (the journal's row at the snapshot's sequence number marked deleted, older snapshots gone).
/// </summary>
public sealed class SnapshotTrimSpecs : IDisposable
{
    private const string PersistenceId = "session-trim-after-stop";
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "broker-trim-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_snapshot_asked_for_just_before_its_entity_stops_still_has_the_rows_it_covers_deleted()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Node = new NodeOptions { DataDir = _dataDir } });
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        broker.Server.System.ActorOf(Props.Create(() => new StopsAfterSnapshot(broker.Server.Context, stopped)));
        await stopped.Task.WaitAsync(TimeSpan.FromSeconds(20));

        // Two events written, a snapshot at 2 sent to the snapshot store, and the entity (its journal with it) stopped at once.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        (long Live, long Deleted, long SnapshotAt) rows;
        while (true)
        {
            rows = Rows();
            if (rows is { Live: 0, SnapshotAt: 2 } || DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.Equal((0L, 1L, 2L), rows);
    }

    private (long Live, long Deleted, long SnapshotAt) Rows()
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(_dataDir, "broker.db"), Pooling = false,
        }.ToString());
        connection.Open();
        long Scalar(string sql)
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("@p", PersistenceId);
            return Convert.ToInt64(command.ExecuteScalar());
        }

        return (Scalar("SELECT COUNT(*) FROM journal WHERE persistence_id = @p AND deleted = 0"),
            Scalar("SELECT COUNT(*) FROM journal WHERE persistence_id = @p AND deleted = 1"),
            Scalar("SELECT COALESCE(MAX(sequence_number), 0) FROM snapshot WHERE persistence_id = @p"));
    }

    /// <summary>An entity that journals two events, asks for a snapshot and stops as soon as it is on its way to storage.</summary>
    private sealed class StopsAfterSnapshot : UntypedActor
    {
        private readonly IActorRef _journal;
        private readonly TaskCompletionSource _stopped;
        private int _done;

        public StopsAfterSnapshot(BrokerContext context, TaskCompletionSource stopped)
        {
            _stopped = stopped;
            _journal = Context.ActorOf(EntityJournal.Props(PersistenceId, Self, context, recover: false, knownSequenceNr: 0), "journal");
            _journal.Tell(new JournalWrite(new SessionSettingsChanged(60, WillCleared: false)));
            _journal.Tell(new JournalWrite(new SessionSettingsChanged(120, WillCleared: false)));
        }

        protected override void OnReceive(object message)
        {
            if (message is not JournalDone)
            {
                return;
            }

            switch (++_done)
            {
                case 2:
                    // The journal sends the snapshot to the snapshot store when it takes this; the deferral behind
                    // it is answered at once (no write pending), long before the snapshot store confirms.
                    _journal.Tell(new JournalSnapshot(new SessionSnapshot(120, null, [], [], [], [])));
                    _journal.Tell(JournalDefer.Instance);
                    break;
                case 3:
                    Context.Stop(Self);
                    break;
            }
        }

        protected override void PostStop() => _stopped.TrySetResult();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
