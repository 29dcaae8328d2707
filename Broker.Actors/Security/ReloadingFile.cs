namespace Broker.Security;

/// <summary>
/// A parsed configuration file that follows its file on disk: every <c>interval</c> the file's modification time and
/// length are compared with those last loaded, and a changed file is parsed again. A file that fails to parse on
/// reload is logged (with the line at fault) and the previous version stays in force; at start-up it is an error.
/// Readers see an immutable <see cref="Current"/> and a <see cref="Version"/> that changes with every reload
/// (connection actors drop their cached decisions when it does).
/// </summary>
public sealed class ReloadingFile<T> : IDisposable
    where T : class
{
    private readonly string _path;
    private readonly Func<string, string, T> _parse;
    private readonly Action<string> _info;
    private readonly Action<string> _warn;
    private readonly Timer _timer;
    private (DateTime Modified, long Length) _stamp;
    private volatile T _current;
    private int _version;
    private int _checking;

    public ReloadingFile(string path, Func<string, string, T> parse, TimeSpan interval, Action<string> info, Action<string> warn)
    {
        _path = path;
        _parse = parse;
        _info = info;
        _warn = warn;
        if (!File.Exists(path))
        {
            throw new SecurityFileException(path, 0, "file not found");
        }

        _stamp = Stamp();
        _current = parse(File.ReadAllText(path), path);
        _timer = new Timer(_ => Check(), null, interval, interval);
    }

    public T Current => _current;

    public int Version => Volatile.Read(ref _version);

    /// <summary>Checks the file now (the timer does this on its own; tests and the management API may call it).</summary>
    public void Check()
    {
        if (Interlocked.Exchange(ref _checking, 1) == 1)
        {
            return;
        }

        try
        {
            var stamp = Stamp();
            if (stamp == _stamp)
            {
                return;
            }

            _stamp = stamp;
            try
            {
                _current = _parse(File.ReadAllText(_path), _path);
                Interlocked.Increment(ref _version);
                _info($"Reloaded {_path}");
            }
            catch (SecurityFileException e)
            {
                _warn($"Not reloading {e.Message}; the previous version stays in force");
            }
            catch (IOException e)
            {
                _stamp = default; // try again on the next tick
                _warn($"Not reloading {_path}: {e.Message}; the previous version stays in force");
            }
        }
        finally
        {
            Volatile.Write(ref _checking, 0);
        }
    }

    private (DateTime, long) Stamp()
    {
        var info = new FileInfo(_path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }

    public void Dispose() => _timer.Dispose();
}
