using System.Diagnostics;
using Broker.Configuration;
using Broker.Persistence;
using Broker.Tests.Durability;
using Npgsql;

namespace Broker.Tests.Persistence;

/// <summary>
/// A node that stops between the INSERT and the COMMIT of a journal write (SIGSTOP, cut off from the database) must not
/// hold the rows it inserted locked for as long as it stands still: the next incarnation of its sessions writes the
/// same keys on another node. On a real PostgreSQL, with the connection string the journal gets.
/// </summary>
public sealed class IdleTransactionSpecs
{
    [Fact]
    public void The_journal_connection_string_bounds_idle_transactions_unless_it_sets_options_itself()
    {
        static BrokerOptions On(string connectionString) =>
            new() { Storage = new StorageOptions { Provider = "postgresql", ConnectionString = connectionString } };

        var bounded = new NpgsqlConnectionStringBuilder(StorageSetup.ConnectionString(On("Host=db;Database=broker;Username=u")));
        Assert.Equal("-c idle_in_transaction_session_timeout=5000", bounded.Options);
        Assert.Equal("db", bounded.Host);
        var own = "Host=db;Database=broker;Username=u;Options=-c statement_timeout=1000";
        Assert.Equal(own, StorageSetup.ConnectionString(On(own)));
    }

    [Fact]
    public async Task A_transaction_left_open_by_a_stopped_writer_releases_its_rows_within_the_limit()
    {
        var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        try
        {
            var storage = await postgres.CreateDatabaseAsync("idletx");
            var journal = StorageSetup.ConnectionString(new BrokerOptions
            {
                Storage = new StorageOptions { Provider = "postgresql", ConnectionString = storage },
            });
            await using (var setup = new NpgsqlConnection(storage))
            {
                await setup.OpenAsync();
                await new NpgsqlCommand("CREATE TABLE rows (id text, seq bigint, PRIMARY KEY (id, seq))", setup).ExecuteNonQueryAsync();
            }

            // The writer that stops: BEGIN, INSERT, then nothing (its process stands still).
            await using var stopped = new NpgsqlConnection(journal);
            await stopped.OpenAsync();
            await using var tx = await stopped.BeginTransactionAsync();
            await new NpgsqlCommand("INSERT INTO rows VALUES ('session-a', 147)", stopped, tx).ExecuteNonQueryAsync();

            // The next incarnation writes the same key: it waits for the stale transaction, then goes through.
            var clock = Stopwatch.StartNew();
            await using var next = new NpgsqlConnection(journal);
            await next.OpenAsync();
            await new NpgsqlCommand("INSERT INTO rows VALUES ('session-a', 147)", next) { CommandTimeout = 30 }.ExecuteNonQueryAsync();
            var waited = clock.Elapsed;
            Assert.InRange(waited, StorageSetup.IdleTransactionLimit - TimeSpan.FromSeconds(1), StorageSetup.IdleTransactionLimit + TimeSpan.FromSeconds(5));

            // The stale one was ended by the server: its commit fails, nothing of it is stored twice.
            await Assert.ThrowsAnyAsync<Exception>(() => tx.CommitAsync());
            await using var check = new NpgsqlConnection(storage);
            await check.OpenAsync();
            Assert.Equal(1L, await new NpgsqlCommand("SELECT count(*) FROM rows", check).ExecuteScalarAsync());
        }
        finally
        {
            await postgres.DisposeAsync();
        }
    }
}
