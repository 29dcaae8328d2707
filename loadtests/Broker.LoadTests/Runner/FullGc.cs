using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Broker.LoadTests.Runner;

/// <summary>
/// A full, blocking garbage collection of a .NET broker from outside, so that its RSS counts live memory rather than
/// garbage not yet collected: <c>dotnet-gcdump collect</c> induces one (and writes the heap's object graph, kept
/// beside the report as the memory profile). Found on PATH or in ~/.dotnet/tools; a process that is not .NET
/// (Mosquitto) is left alone. <see cref="Collect"/> returns the managed heap's size from the dump, or null.
/// </summary>
public static partial class FullGc
{
    public static string? Tool()
    {
        var home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append(Path.Combine(home, ".dotnet", "tools"))
            .Select(dir => Path.Combine(dir, "dotnet-gcdump"));
        return candidates.FirstOrDefault(File.Exists);
    }

    public static bool IsDotNet(int pid)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/maps").Any(l => l.Contains("libcoreclr.so", StringComparison.Ordinal));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Runs a full GC in <paramref name="pid"/> by taking a gcdump to <paramref name="dumpPath"/>; the managed heap bytes, or null.</summary>
    public static long? Collect(int pid, string dumpPath, Action<string> log)
    {
        if (Tool() is not { } tool || !IsDotNet(pid) || pid == Environment.ProcessId)
        {
            return null;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(dumpPath))!);
        if (Run(tool, $"collect -p {pid} -o \"{dumpPath}\"", log) is null)
        {
            return null;
        }

        // "heapstat": one line per type (size, count, type) and a total line.
        var report = Run(tool, $"report \"{dumpPath}\"", log);
        if (report is null)
        {
            return null;
        }

        File.WriteAllText(dumpPath + ".txt", report);
        var total = TotalLine().Match(report);
        return total.Success ? long.Parse(total.Groups[1].Value.Replace(",", ""), CultureInfo.InvariantCulture) : null;
    }

    private static string? Run(string tool, string arguments, Action<string> log)
    {
        using var p = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(180_000))
        {
            p.Kill();
            log($"dotnet-gcdump {arguments}: no answer in 180 s");
            return null;
        }

        if (p.ExitCode != 0)
        {
            log($"dotnet-gcdump {arguments}: exit code {p.ExitCode}: {p.StandardError.ReadToEnd().Trim()}");
            return null;
        }

        return output.Result;
    }

    [GeneratedRegex(@"^\s*([\d,]+)\s+GC Heap bytes", RegexOptions.Multiline | RegexOptions.IgnoreCase)]
    private static partial Regex TotalLine();
}
