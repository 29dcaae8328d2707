using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Broker.LoadTests.Runner;

namespace Broker.LoadTests.Reports;

/// <summary>Writes report.json, report.md and report.html (self-contained: inline SVG charts, no scripts, no CDN).</summary>
public static class ReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(RunResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "report.json"), JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(dir, "report.md"), Markdown(r));
        File.WriteAllText(Path.Combine(dir, "report.html"), Html(r));
    }

    public static string Markdown(RunResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"# Load test: {r.Scenario}").AppendLine();
        sb.AppendLine(Inv, $"{r.Description}. Started {r.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC.").AppendLine();
        sb.AppendLine(Inv, $"```\n{r.CommandLine}\n```").AppendLine();
        sb.AppendLine("| measure | value |").AppendLine("|---|---|");
        foreach (var (k, v) in ConsoleView.Rows(r))
        {
            sb.AppendLine(Inv, $"| {k} | {v.Replace("|", "\\|", StringComparison.Ordinal)} |");
        }

        sb.AppendLine().AppendLine("| QoS | publishers | sent | acknowledged | owed deliveries | received | lost | duplicates |").AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var q in r.PerQoS)
        {
            sb.AppendLine(Inv, $"| {q.QoS} | {q.Publishers} | {q.Sent:N0} | {(q.QoS == 0 ? "-" : q.Acked.ToString("N0", Inv))} | {q.Expected:N0} | {q.Received:N0} | {q.Lost:N0} | {q.Duplicates:N0} |");
        }

        if (r.Warnings.Count + r.ThresholdFailures.Count > 0)
        {
            sb.AppendLine();
            foreach (var w in r.Warnings)
            {
                sb.AppendLine(Inv, $"- **warning:** {w}");
            }

            foreach (var f in r.ThresholdFailures)
            {
                sb.AppendLine(Inv, $"- **threshold failed:** {f}");
            }
        }

        sb.AppendLine().AppendLine("## Per second").AppendLine();
        sb.AppendLine("| s | phase | sent/s | received/s | ops/s | p50 ms | p99 ms | runner cores | broker cores | broker RSS MB |").AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var s in r.Series)
        {
            sb.AppendLine(Inv, $"| {s.Second:0.0} | {s.Phase} | {s.SentPerSecond:N0} | {s.ReceivedPerSecond:N0} | {s.OpsPerSecond:N0} | {F(s.P50Ms)} | {F(s.P99Ms)} | {s.RunnerCores:0.00} | {F(s.BrokerCores, "0.00")} | {F(s.BrokerRssMb, "0")} |");
        }

        return sb.ToString();
    }

    private static string F(double? v, string format = "0.000") => v is { } x ? x.ToString(format, Inv) : "-";

    public static string Html(RunResult r)
    {
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>Load test: ").Append(E(r.Scenario)).Append("</title><style>")
          .Append("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}")
          .Append("td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}")
          .Append(".warn{color:#a60}.fail{color:#c00;font-weight:bold}svg{background:#fafafa;border:1px solid #ddd}</style></head><body>");
        sb.Append("<h1>Load test: ").Append(E(r.Scenario)).Append("</h1><p>").Append(E(r.Description)).Append(". Started ")
          .Append(r.StartedUtc.ToString("yyyy-MM-dd HH:mm:ss", Inv)).Append(" UTC.</p><pre>").Append(E(r.CommandLine)).Append("</pre>");
        sb.Append("<table>");
        foreach (var (k, v) in ConsoleView.Rows(r))
        {
            sb.Append("<tr><td>").Append(E(k)).Append("</td><td>").Append(E(v)).Append("</td></tr>");
        }

        sb.Append("</table><table><tr><th>QoS</th><th>publishers</th><th>sent</th><th>acknowledged</th><th>owed deliveries</th><th>received</th><th>lost</th><th>duplicates</th></tr>");
        foreach (var q in r.PerQoS)
        {
            sb.Append(Inv, $"<tr><td>{q.QoS}</td><td>{q.Publishers}</td><td>{q.Sent:N0}</td><td>{(q.QoS == 0 ? "-" : q.Acked.ToString("N0", Inv))}</td><td>{q.Expected:N0}</td><td>{q.Received:N0}</td><td>{q.Lost:N0}</td><td>{q.Duplicates:N0}</td></tr>");
        }

        sb.Append("</table>");
        foreach (var w in r.Warnings)
        {
            sb.Append("<p class=\"warn\">warning: ").Append(E(w)).Append("</p>");
        }

        foreach (var f in r.ThresholdFailures)
        {
            sb.Append("<p class=\"fail\">threshold failed: ").Append(E(f)).Append("</p>");
        }

        var x = r.Series.Select(s => s.Second).ToArray();
        sb.Append("<h2>Throughput</h2>").Append(Chart(x, "per second",
            [("received/s", "#1f77b4", r.Series.Select(s => (double?)s.ReceivedPerSecond).ToArray()),
             ("sent/s", "#2ca02c", r.Series.Select(s => (double?)s.SentPerSecond).ToArray()),
             ("ops/s", "#9467bd", r.Series.Select(s => (double?)s.OpsPerSecond).ToArray())], r.Series));
        sb.Append("<h2>Latency</h2>").Append(Chart(x, "ms",
            [("p50", "#1f77b4", r.Series.Select(s => s.P50Ms).ToArray()), ("p99", "#d62728", r.Series.Select(s => s.P99Ms).ToArray()),
             ("max", "#bbbbbb", r.Series.Select(s => s.MaxMs).ToArray())], r.Series));
        sb.Append("<h2>CPU</h2>").Append(Chart(x, "cores",
            [("runner", "#ff7f0e", r.Series.Select(s => (double?)s.RunnerCores).ToArray()), ("broker", "#1f77b4", r.Series.Select(s => s.BrokerCores).ToArray())], r.Series));
        sb.Append("<h2>Broker memory</h2>").Append(Chart(x, "RSS MB", [("RSS", "#8c564b", r.Series.Select(s => s.BrokerRssMb).ToArray())], r.Series));
        sb.Append("</body></html>");
        return sb.ToString();
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);

    /// <summary>A line chart: x in seconds, y from 0 to the largest value, measurement phase shaded, a legend.</summary>
    private static string Chart(double[] x, string unit, (string Name, string Color, double?[] Values)[] lines, List<Sample> series)
    {
        const int w = 900, h = 260, left = 70, right = 20, top = 20, bottom = 40;
        var values = lines.SelectMany(l => l.Values).Where(v => v.HasValue).Select(v => v!.Value).ToArray();
        if (x.Length < 2 || values.Length == 0 || values.Max() <= 0)
        {
            return "<p>(no data)</p>";
        }

        var xmin = x[0];
        var xmax = x[^1];
        var ymax = NiceCeiling(values.Max());
        double X(double v) => left + (v - xmin) / (xmax - xmin) * (w - left - right);
        double Y(double v) => top + (1 - v / ymax) * (h - top - bottom);
        var sb = new StringBuilder();
        sb.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"11\">");
        var measured = series.Where(s => s.Phase == nameof(RunPhase.Measure)).Select(s => s.Second).ToArray();
        if (measured.Length > 0)
        {
            sb.Append(Inv, $"<rect x=\"{X(measured[0] - 1):0.#}\" y=\"{top}\" width=\"{X(measured[^1]) - X(measured[0] - 1):0.#}\" height=\"{h - top - bottom}\" fill=\"#e8f0ff\"/>");
            sb.Append(Inv, $"<text x=\"{X(measured[0] - 1) + 4:0.#}\" y=\"{top + 12}\" fill=\"#557\">measured</text>");
        }

        for (var i = 0; i <= 4; i++)
        {
            var v = ymax * i / 4;
            sb.Append(Inv, $"<line x1=\"{left}\" x2=\"{w - right}\" y1=\"{Y(v):0.#}\" y2=\"{Y(v):0.#}\" stroke=\"#ddd\"/>");
            sb.Append(Inv, $"<text x=\"{left - 6}\" y=\"{Y(v) + 4:0.#}\" text-anchor=\"end\">{Label(v)}</text>");
        }

        var step = Math.Max(1, (int)Math.Ceiling((xmax - xmin) / 10));
        for (var t = Math.Ceiling(xmin); t <= xmax; t += step)
        {
            sb.Append(Inv, $"<text x=\"{X(t):0.#}\" y=\"{h - bottom + 16}\" text-anchor=\"middle\">{t:0}s</text>");
        }

        sb.Append(Inv, $"<text x=\"12\" y=\"{top + (h - top - bottom) / 2}\" transform=\"rotate(-90 12 {top + (h - top - bottom) / 2})\" text-anchor=\"middle\">{E(unit)}</text>");
        var legendX = left + 10;
        foreach (var (name, color, vals) in lines)
        {
            var points = string.Join(" ", Enumerable.Range(0, x.Length).Where(i => vals[i].HasValue).Select(i => $"{X(x[i]).ToString("0.#", Inv)},{Y(vals[i]!.Value).ToString("0.#", Inv)}"));
            if (points.Length > 0)
            {
                sb.Append(Inv, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points}\"/>");
            }

            sb.Append(Inv, $"<rect x=\"{legendX}\" y=\"{h - 14}\" width=\"12\" height=\"4\" fill=\"{color}\"/><text x=\"{legendX + 16}\" y=\"{h - 9}\">{E(name)}</text>");
            legendX += 110;
        }

        return sb.Append("</svg>").ToString();
    }

    private static double NiceCeiling(double v)
    {
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (var m in new[] { 1, 2, 2.5, 5, 10 })
        {
            if (m * magnitude >= v)
            {
                return m * magnitude;
            }
        }

        return 10 * magnitude;
    }

    private static string Label(double v) =>
        v >= 1_000_000 ? (v / 1_000_000).ToString("0.##", Inv) + "M" : v >= 1000 ? (v / 1000).ToString("0.##", Inv) + "k" : v.ToString("0.###", Inv);
}
