using Broker.Tests.Interop;
using Microsoft.Data.Sqlite;

namespace Broker.Tests.Durability;

/// <summary>
/// Storage that cannot be used stops start-up with a non-zero exit code and one line that names the provider and
/// the target, and never "repairs" somebody's file: a corrupt or foreign SQLite file is left byte for byte as it was.
/// </summary>
public sealed class StartupFailureSpecs : IDisposable
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-startup-").FullName;

    private string DbPath => Path.Combine(_dataDir, "broker.db");

    [Fact]
    public async Task Unreachable_postgresql_should_exit_non_zero_with_one_line_naming_provider_and_host_port()
    {
        var port = InteropEnvironment.FreePort(); // nobody listens there
        using var node = BrokerNodeProcess.Launch(
            $"--Node:DataDir={_dataDir}", "--Storage:Provider=postgresql",
            $"--Storage:ConnectionString=Host=127.0.0.1;Port={port};Database=broker;Username=postgres;Timeout=5");

        var exitCode = await node.Process.WaitForExitAsync(ExitTimeout);
        Assert.True(exitCode != 0, $"exit code 0\n{node.Process.Report()}");
        var line = Assert.Single(node.Process.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("postgresql", line, StringComparison.OrdinalIgnoreCase);
        Assert.Contains($"127.0.0.1:{port}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Broker ready", node.Process.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Corrupt_sqlite_file_should_stop_start_up_and_stay_untouched()
    {
        var garbage = new byte[64 * 1024];
        new Random(42).NextBytes(garbage);
        await File.WriteAllBytesAsync(DbPath, garbage);

        await AssertRefusedAsync(garbage);
    }

    [Fact]
    public async Task Foreign_sqlite_file_should_stop_start_up_and_stay_untouched()
    {
        var builder = new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false };
        using (var connection = new SqliteConnection(builder.ToString()))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL); INSERT INTO invoices VALUES (1, 9.5);";
            command.ExecuteNonQuery();
        }

        await AssertRefusedAsync(await File.ReadAllBytesAsync(DbPath), "invoices");
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

    private async Task AssertRefusedAsync(byte[] before, string? mentioned = null)
    {
        using var node = BrokerNodeProcess.Launch($"--Node:DataDir={_dataDir}");
        var exitCode = await node.Process.WaitForExitAsync(ExitTimeout);
        Assert.True(exitCode != 0, $"exit code 0\n{node.Process.Report()}");

        var line = Assert.Single(node.Process.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("sqlite", line, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(DbPath, line, StringComparison.Ordinal);
        if (mentioned is not null)
        {
            Assert.Contains(mentioned, line, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("Broker ready", node.Process.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(DbPath));
        Assert.False(File.Exists(DbPath + "-wal") && new FileInfo(DbPath + "-wal").Length > 0, "a WAL file was written beside the refused database");
    }
}
