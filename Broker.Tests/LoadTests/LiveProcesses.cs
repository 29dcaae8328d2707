namespace Broker.Tests.LoadTests;

/// <summary>What the script specs ask of /proc about the processes a script started.</summary>
internal static class LiveProcesses
{
    /// <summary>Running processes (not this one, no zombie) whose command line contains <paramref name="text"/> (a run's folder).</summary>
    public static List<int> Mentioning(string text)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == System.Environment.ProcessId)
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(text, StringComparison.Ordinal) && IsRunning(pid))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    /// <summary>The process exists and is not a zombie (a stopped child of nobody is reaped by init; a zombie keeps /proc/pid).</summary>
    public static bool IsRunning(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        try
        {
            return File.Exists(stat) && File.ReadAllText(stat).Split(") ")[1][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
