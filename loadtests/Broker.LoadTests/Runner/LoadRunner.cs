using System.Globalization;
using Broker.LoadTests.Reports;
using Broker.LoadTests.Scenarios;
using Spectre.Console;

namespace Broker.LoadTests.Runner;

/// <summary>One run from parsed options to exit code: progress, summary, reports, thresholds.</summary>
public static class LoadRunner
{
    /// <summary>Runs and returns the exit code (0 passed, 1 failed to run, 2 a threshold failed).</summary>
    public static async Task<int> RunAsync(RunOptions options, string commandLine, TextWriter log)
    {
        var result = await RunForResultAsync(options, commandLine, log);
        return ExitCode(result);
    }

    public static int ExitCode(RunResult result) =>
        result.ThresholdFailures.Count > 0 ? 2 : result.Warnings.Any(w => w.StartsWith("the run failed", StringComparison.Ordinal)) ? 1 : 0;

    public static async Task<RunResult> RunForResultAsync(RunOptions options, string commandLine, TextWriter log)
    {
        var live = !options.NoLive && !Console.IsOutputRedirected && ReferenceEquals(log, Console.Out);
        if (Console.IsOutputRedirected)
        {
            // Spectre assumes 80 columns when it cannot ask the terminal; logs read better unwrapped.
            AnsiConsole.Profile.Width = 140;
        }

        var metrics = new RunMetrics();
        var context = new ScenarioContext(options, metrics, m => log.WriteLine($"[{metrics.Elapsed.TotalSeconds,6:0.0}s] {m}"));
        var scenario = ScenarioCatalog.Create(context);
        log.WriteLine($"{scenario.Name}: {scenario.Description}; targets {string.Join(",", options.Targets)}; " +
            $"load {string.Join("; ", (options.Load ?? scenario.DefaultLoad).Select(l => l.ToString()))}");
        RunResult result;
        if (live)
        {
            var table = new Table().AddColumns("s", "phase", "sent/s", "received/s", "ops/s", "p50 ms", "p99 ms", "runner cores", "broker cores", "broker RSS MB", "errors");
            result = await AnsiConsole.Live(table).StartAsync(async ctx =>
            {
                var runner = new ScenarioRunner(scenario, context, (s, m) =>
                {
                    lock (table)
                    {
                        if (table.Rows.Count >= 12)
                        {
                            table.Rows.RemoveAt(0);
                        }

                        var inv = CultureInfo.InvariantCulture;
                        table.AddRow(s.Second.ToString("0", inv), s.Phase, s.SentPerSecond.ToString("N0", inv), s.ReceivedPerSecond.ToString("N0", inv),
                            s.OpsPerSecond.ToString("N0", inv), s.P50Ms?.ToString("0.000", inv) ?? "-", s.P99Ms?.ToString("0.000", inv) ?? "-",
                            s.RunnerCores.ToString("0.00", inv), s.BrokerCores?.ToString("0.00", inv) ?? "-", s.BrokerRssMb?.ToString("0", inv) ?? "-",
                            m.Errors.ToString(inv));
                        ctx.Refresh();
                    }
                });
                return await runner.RunAsync(commandLine);
            });
        }
        else
        {
            result = await new ScenarioRunner(scenario, context, (s, m) => log.WriteLine(ConsoleView.ProgressLine(s, m))).RunAsync(commandLine);
        }

        CheckThresholds(options, result);
        if (ReferenceEquals(log, Console.Out))
        {
            ConsoleView.PrintSummary(result, live);
        }
        else
        {
            foreach (var (k, v) in ConsoleView.Rows(result))
            {
                log.WriteLine($"{k}: {v}");
            }

            foreach (var w in result.Warnings.Concat(result.ThresholdFailures))
            {
                log.WriteLine(w);
            }
        }

        if (!options.NoReport)
        {
            var dir = options.ReportDir ?? Path.Combine("load-reports", $"{scenario.Name}-{result.StartedUtc:yyyyMMdd-HHmmss}");
            ReportWriter.Write(result, dir);
            log.WriteLine($"reports: {Path.GetFullPath(dir)}/report.{{md,html,json}}");
        }

        return result;
    }

    private static void CheckThresholds(RunOptions o, RunResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        if (o.MaxLoss is { } maxLoss && r.TotalLost > maxLoss)
        {
            r.ThresholdFailures.Add($"lost {r.TotalLost} > --max-loss {maxLoss}");
        }

        if (o.MaxDuplicates is { } maxDup && r.TotalDuplicates > maxDup)
        {
            r.ThresholdFailures.Add($"duplicates {r.TotalDuplicates} > --max-duplicates {maxDup}");
        }

        if (o.MaxP99Ms is { } p99 && (r.LatencyCount == 0 || r.LatencyP99Ms > p99))
        {
            r.ThresholdFailures.Add(string.Create(inv, $"p99 {r.LatencyP99Ms:0.000} ms > --max-p99-ms {p99} (or no latency samples)"));
        }

        if (o.MaxP50Ms is { } p50 && (r.LatencyCount == 0 || r.LatencyP50Ms > p50))
        {
            r.ThresholdFailures.Add(string.Create(inv, $"p50 {r.LatencyP50Ms:0.000} ms > --max-p50-ms {p50} (or no latency samples)"));
        }

        if (o.MinRate is { } minRate && r.Rate < minRate)
        {
            r.ThresholdFailures.Add(string.Create(inv, $"rate {r.Rate:0} {r.RateUnit} < --min-rate {minRate}"));
        }

        if (o.MaxErrors is { } maxErrors && r.Errors > maxErrors)
        {
            r.ThresholdFailures.Add($"errors {r.Errors} > --max-errors {maxErrors} (last: {r.LastError})");
        }
    }
}
