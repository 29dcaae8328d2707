using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Broker.Tests.Interop;

/// <summary>
/// A child process (mosquitto_pub, python3, a broker node) started by a test: stdout and stderr are collected line by
/// line, every wait is bounded, and Dispose kills the process by its own PID if it is still running. A test never
/// leaves a child behind and never waits on one forever.
/// </summary>
public sealed class ExternalProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = new();
    private readonly List<string> _stderr = new();
    private readonly SemaphoreSlim _lineSignal = new(0);
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ExternalProcess(Process process, string description)
    {
        _process = process;
        Description = description;
    }

    public string Description { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public IReadOnlyList<string> StdoutLines
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToList();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return string.Join('\n', _stderr);
            }
        }
    }

    public string Stdout => string.Join('\n', StdoutLines);

    public static ExternalProcess Start(string file, IEnumerable<string> args, IDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // Children never inherit broker settings from the test run by accident.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("BROKER__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(key);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var description = file + " " + string.Join(' ', info.ArgumentList);
        var external = new ExternalProcess(process, description);
        process.OutputDataReceived += (_, e) => external.OnLine(e.Data, external._stdout, external._stdoutClosed);
        process.ErrorDataReceived += (_, e) => external.OnLine(e.Data, external._stderr, external._stderrClosed);
        if (!process.Start())
        {
            throw new InvalidOperationException("Could not start " + description);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return external;
    }

    /// <summary>Runs a process to completion; fails with its stderr if it overruns or exits with a non-zero code.</summary>
    public static async Task<ExternalProcess> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout)
    {
        var process = Start(file, args);
        try
        {
            await process.WaitForSuccessAsync(timeout);
            return process;
        }
        finally
        {
            process.Dispose();
        }
    }

    /// <summary>Waits for the process to exit; returns its exit code, or kills it and fails after the timeout.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"{Description} did not exit within {timeout.TotalSeconds} s; killed.\n{Report()}");
        }

        // Let the asynchronous readers drain the pipes (bounded: they close when the process is gone).
        await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(TimeSpan.FromSeconds(5));
        return _process.ExitCode;
    }

    public async Task WaitForSuccessAsync(TimeSpan timeout)
    {
        var code = await WaitForExitAsync(timeout);
        if (code != 0)
        {
            throw new InvalidOperationException($"{Description} exited with code {code}.\n{Report()}");
        }
    }

    /// <summary>Waits for a stdout line matching the predicate; fails with the output if it does not come in time.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var match = StdoutLines.FirstOrDefault(predicate);
            if (match is not null)
            {
                return match;
            }

            if (_process.HasExited && _stdoutClosed.Task.IsCompleted)
            {
                throw new InvalidOperationException(
                    $"{Description} exited with code {_process.ExitCode} before the expected line.\n{Report()}");
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"{Description}: expected line not seen within {timeout.TotalSeconds} s.\n{Report()}");
            }

            await _lineSignal.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    /// <summary>Sends SIGTERM to the process (what systemd and docker send to stop a service).</summary>
    public void Terminate()
    {
        if (kill(_process.Id, 15) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>SIGSTOP: the process freezes (like a very long GC pause or a VM stall) until <see cref="Resume"/>.</summary>
    public void Pause() => Signal(19, "SIGSTOP");

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal(18, "SIGCONT");

    private void Signal(int signal, string name)
    {
        if (kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {name}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Sends SIGKILL to the process (a crash: no shutdown hooks run) and waits, bounded, until it is gone.</summary>
    public async Task KillHardAsync(TimeSpan timeout)
    {
        if (kill(_process.Id, 9) != 0 && !_process.HasExited)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGKILL) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        await WaitForExitAsync(timeout);
    }

    public string Report() => $"--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private void OnLine(string? line, List<string> lines, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
        }
        else
        {
            lock (lines)
            {
                lines.Add(line);
            }
        }

        _lineSignal.Release();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}

/// <summary>Helpers shared by the interop and node specs.</summary>
public static class InteropEnvironment
{
    public const string MosquittoPub = "/usr/bin/mosquitto_pub";
    public const string MosquittoSub = "/usr/bin/mosquitto_sub";

    /// <summary>coreutils stdbuf, to run a stdio program with line-buffered stdout on a pipe.</summary>
    public const string StdBuf = "/usr/bin/stdbuf";

    /// <summary>Debian's python3 (with python3-paho-mqtt), not whatever python3 is first on PATH.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>A port free right now on 127.0.0.1 (the OS picks it).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// <paramref name="count"/> ports free right now on 127.0.0.1, all different: each is held until all are picked.
    /// Picked one after the other with <see cref="FreePort"/>, the OS may hand out a port it just gave back (seen: one
    /// node's MQTT port was another's metrics port).
    /// </summary>
    public static int[] FreePorts(int count)
    {
        var listeners = new List<TcpListener>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listeners.Add(listener);
                listener.Start();
            }

            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }
}
