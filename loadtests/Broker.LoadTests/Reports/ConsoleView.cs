using System.Globalization;
using Broker.LoadTests.Runner;
using Spectre.Console;

namespace Broker.LoadTests.Reports;

/// <summary>Terminal output: one progress line a second (live-updating when stdout is a terminal) and the final table.</summary>
public static class ConsoleView
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string ProgressLine(Sample s, RunMetrics m) =>
        string.Create(Inv, $"[{s.Second,6:0.0}s {s.Phase,-7}] sent {s.SentPerSecond,9:N0}/s  recv {s.ReceivedPerSecond,9:N0}/s  ops {s.OpsPerSecond,7:N0}/s  " +
            $"p50 {Ms(s.P50Ms)}  p99 {Ms(s.P99Ms)}  runner {s.RunnerCores:0.00} cores  broker {(s.BrokerCores is { } b ? b.ToString("0.00", Inv) : "?")} cores  " +
            $"rss {(s.BrokerRssMb is { } r ? r.ToString("0", Inv) + " MB" : "?")}  total recv {m.Received:N0} errors {m.Errors}");

    private static string Ms(double? v) => v is { } x ? x.ToString("0.000", Inv) + " ms" : "   -    ";

    /// <summary>Live progress: rewrites one status line on a terminal, prints plain lines otherwise.</summary>
    public static Action<Sample, RunMetrics> Progress(bool live)
    {
        if (live)
        {
            return (s, m) => AnsiConsole.Console.Write(new Text("\r" + ProgressLine(s, m).PadRight(Console.WindowWidth > 0 ? Console.WindowWidth - 1 : 0)));
        }

        return (s, m) => Console.WriteLine(ProgressLine(s, m));
    }

    public static void PrintSummary(RunResult r, bool ansi)
    {
        if (ansi)
        {
            Console.WriteLine();
        }

        var table = new Table().Title($"{r.Scenario}: {r.Description}").AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        foreach (var (k, v) in Rows(r))
        {
            table.AddRow(Markup.Escape(k), Markup.Escape(v));
        }

        var perQos = new Table().Title("per QoS").AddColumns("QoS", "publishers", "sent", "acknowledged", "owed deliveries", "received", "lost", "duplicates");
        foreach (var q in r.PerQoS)
        {
            perQos.AddRow(q.QoS.ToString(Inv), q.Publishers.ToString(Inv), q.Sent.ToString("N0", Inv), q.QoS == 0 ? "-" : q.Acked.ToString("N0", Inv),
                q.Expected.ToString("N0", Inv), q.Received.ToString("N0", Inv), q.Lost.ToString("N0", Inv), q.Duplicates.ToString("N0", Inv));
        }

        AnsiConsole.Write(table);
        if (r.PerQoS.Length > 0)
        {
            AnsiConsole.Write(perQos);
        }

        foreach (var w in r.Warnings)
        {
            AnsiConsole.MarkupLine($"[yellow]warning:[/] {Markup.Escape(w)}");
        }

        foreach (var f in r.ThresholdFailures)
        {
            AnsiConsole.MarkupLine($"[red]threshold failed:[/] {Markup.Escape(f)}");
        }
    }

    public static IEnumerable<(string Key, string Value)> Rows(RunResult r)
    {
        yield return ("targets", string.Join(", ", r.Targets));
        yield return ("load", string.Join("; ", r.Load) + $" (after {r.WarmUpSeconds:0.#} s warm-up)");
        yield return ("measured", string.Create(Inv, $"{r.MeasuredSeconds:0.00} s, {r.MeasuredCount:N0} {(r.RateUnit == "msg/s" ? "deliveries" : "operations")}"));
        yield return ("rate", string.Create(Inv, $"{r.Rate:N0} {r.RateUnit}"));
        yield return ("latency p50 / p90 / p99 / p99.9", r.LatencyCount == 0 ? "-" :
            string.Create(Inv, $"{r.LatencyP50Ms:0.000} / {r.LatencyP90Ms:0.000} / {r.LatencyP99Ms:0.000} / {r.LatencyP999Ms:0.000} ms"));
        yield return ("latency mean / max", r.LatencyCount == 0 ? "-" : string.Create(Inv, $"{r.LatencyMeanMs:0.000} / {r.LatencyMaxMs:0.000} ms ({r.LatencyCount:N0} samples)"));
        yield return ("lost / duplicates", string.Create(Inv, $"{r.TotalLost:N0} / {r.TotalDuplicates:N0}"));
        yield return ("errors", r.Errors == 0 ? "0" : $"{r.Errors} (last: {r.LastError})");
        yield return ("runner CPU", string.Create(Inv, $"{r.RunnerCpuSeconds:0.00} s = {r.RunnerCores:0.00} of {r.Cores} cores"));
        yield return ("broker CPU", r.BrokerCpuSeconds is { } b
            ? string.Create(Inv, $"{b:0.00} s = {r.BrokerCores:0.00} cores ({(r.BrokerCgroups.Length > 0 ? "cgroups " + string.Join(",", r.BrokerCgroups.Select(Path.GetFileName)) : "pid " + string.Join(",", r.BrokerPids))}); {r.BrokerCpuMicrosPerUnit:0.00} µs per {(r.RateUnit == "msg/s" ? "delivery" : "operation")}")
            : "not measured");
        if (r.BrokerRssEndBytes is { } rss)
        {
            yield return ("broker RSS start / end", string.Create(Inv, $"{r.BrokerRssStartBytes / 1048576.0:0.0} / {rss / 1048576.0:0.0} MB"));
        }

        foreach (var (k, v) in r.Facts)
        {
            yield return (k, v);
        }
    }
}
