using System.Diagnostics;
using System.Runtime.InteropServices;
using Broker.LoadTests.Runner;

namespace Broker.LoadTests.Scenarios;

/// <summary>
/// cluster-config/local-cluster.sh up/down under an exclusive flock on /tmp/broker-fixed-ports.lock (its ports are
/// fixed: 1883-1885, 8883-8885, 8083-8085, 8443-8445, 9101-9103, 4053-4055, 55432), held from before "up" until after "down".
/// </summary>
public sealed partial class LocalCluster : IAsyncDisposable
{
    private const string LockPath = "/tmp/broker-fixed-ports.lock";
    private readonly FileStream _lock;
    private readonly string _script;
    private readonly Action<string> _log;

    private LocalCluster(FileStream lockFile, string script, Action<string> log)
    {
        _lock = lockFile;
        _script = script;
        _log = log;
    }

    public IReadOnlyList<Target> Targets { get; } = [new("127.0.0.1", 1883), new("127.0.0.1", 1884), new("127.0.0.1", 1885)];

    public static string Script =>
        FindUp(Directory.GetCurrentDirectory()) ?? FindUp(AppContext.BaseDirectory)
        ?? throw new FileNotFoundException("cluster-config/local-cluster.sh not found above the current or the runner's directory");

    private static string? FindUp(string dir)
    {
        for (var d = new DirectoryInfo(dir); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "cluster-config", "local-cluster.sh");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    public static async Task<LocalCluster> UpAsync(Action<string> log, CancellationToken ct)
    {
        var script = Script;
        var lockFile = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        // flock(2) waits here, bounded by the run's token (polled with LOCK_NB).
        while (Flock(lockFile.SafeFileHandle.DangerousGetHandle().ToInt32(), LockExclusive | LockNonBlocking) != 0)
        {
            await Task.Delay(500, ct);
        }

        var cluster = new LocalCluster(lockFile, script, log);
        try
        {
            await cluster.RunScriptAsync("up", TimeSpan.FromMinutes(5), ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The PID of node N from cluster-config/.run/state (written by local-cluster.sh up).</summary>
    public int? NodePid(int node) => NodePidFromState(node, Path.Combine(Path.GetDirectoryName(_script)!, ".run", "state"));

    public static int? NodePidFromState(int node, string? stateFile = null)
    {
        stateFile ??= Path.Combine(Path.GetDirectoryName(Script)!, ".run", "state");
        if (!File.Exists(stateFile))
        {
            return null;
        }

        var line = File.ReadLines(stateFile).FirstOrDefault(l => l.StartsWith($"node{node}=", StringComparison.Ordinal));
        return line is null ? null : int.Parse(line[(line.IndexOf('=') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task RunScriptAsync(string verb, TimeSpan limit, CancellationToken ct)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", [_script, verb]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"local-cluster.sh {verb} took longer than {limit.TotalSeconds:0} s");
        }

        foreach (var line in (await stdout + await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            _log($"local-cluster.sh {verb}: {line}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"local-cluster.sh {verb} exited with {process.ExitCode}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunScriptAsync("down", TimeSpan.FromMinutes(2), CancellationToken.None);
        }
        finally
        {
            Flock(_lock.SafeFileHandle.DangerousGetHandle().ToInt32(), LockUnlock);
            await _lock.DisposeAsync();
        }
    }

    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;
    private const int LockUnlock = 8;

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);
}
