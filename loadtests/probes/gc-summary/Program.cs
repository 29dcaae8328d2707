// Summarizes a dotnet-trace file of a broker process: its garbage collections (how many of each generation, why,
// the pauses) and, for a trace taken with the gc-verbose profile, the sampled allocations by type with the call
// stacks that made them. Used for docs/benchmarks.md, "Allocations per message and per connect".
//
//   dotnet-trace collect -p <broker pid> --profile gc-verbose --duration 00:00:00:05 -o gc.nettrace
//   dotnet run -c Release --project loadtests/probes/gc-summary -- gc.nettrace [types=30] [stacks-for-type-substring] [frames=8]
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: gc-summary <file.nettrace> [types=30] [stacks-for-type-substring] [frames=8]");
    return 1;
}

var top = args.Length > 1 ? int.Parse(args[1]) : 30;
var stacksFor = args.Length > 2 ? args[2] : null;
var frames = args.Length > 3 ? int.Parse(args[3]) : 8;

using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var gcs = new Dictionary<string, int>();
var pauses = new List<double>();
var promoted = new List<long>(); // bytes promoted out of gen0, per collection
var byType = new Dictionary<string, long>();
var stacks = new Dictionary<string, Dictionary<string, long>>();
long sampled = 0;
double? suspendedAt = null;
double first = double.NaN, last = 0;
foreach (var ev in log.Events)
{
    if (double.IsNaN(first))
    {
        first = ev.TimeStampRelativeMSec;
    }

    last = ev.TimeStampRelativeMSec;
    switch (ev)
    {
        case GCStartTraceData start:
            var key = $"gen{start.Depth} {start.Reason} {start.Type}";
            gcs[key] = gcs.GetValueOrDefault(key) + 1;
            break;
        case GCSuspendEETraceData:
            suspendedAt = ev.TimeStampRelativeMSec;
            break;
        case GCNoUserDataTraceData when ev.EventName.Contains("RestartEEStop", StringComparison.Ordinal) && suspendedAt is { } at:
            pauses.Add(ev.TimeStampRelativeMSec - at);
            suspendedAt = null;
            break;
        case GCHeapStatsTraceData stats:
            promoted.Add(stats.TotalPromotedSize0);
            break;
        case GCAllocationTickTraceData tick:
            var type = tick.TypeName + (tick.AllocationKind == GCAllocationKind.Large ? " [large object heap]" : "");
            sampled += tick.AllocationAmount64;
            byType[type] = byType.GetValueOrDefault(type) + tick.AllocationAmount64;
            if (stacksFor is not null && type.Contains(stacksFor, StringComparison.Ordinal))
            {
                var names = new List<string>();
                for (var s = ev.CallStack(); s is not null && names.Count < frames; s = s.Caller)
                {
                    var m = s.CodeAddress.FullMethodName;
                    names.Add(string.IsNullOrEmpty(m) ? s.CodeAddress.ModuleName + "!?" : m.Length > 120 ? m[..120] : m);
                }

                var perType = stacks.TryGetValue(type, out var d) ? d : stacks[type] = new();
                var stack = string.Join("\n        <- ", names);
                perType[stack] = perType.GetValueOrDefault(stack) + tick.AllocationAmount64;
            }

            break;
    }
}

Console.WriteLine($"trace of {(last - first) / 1000:F2} s");
Console.WriteLine("garbage collections (generation, reason, kind):");
foreach (var (k, v) in gcs.OrderByDescending(x => x.Value))
{
    Console.WriteLine($"  {v,6}  {k}");
}

if (pauses.Count > 0)
{
    pauses.Sort();
    Console.WriteLine($"pauses (threads suspended to resumed): {pauses.Count}, {pauses.Sum():F1} ms in all, " +
        $"median {pauses[pauses.Count / 2]:F2} ms, longest {pauses[^1]:F2} ms");
}

if (promoted.Count > 0)
{
    promoted.Sort();
    Console.WriteLine($"promoted out of gen0 per collection: median {promoted[promoted.Count / 2] / 1024} KB, mean {promoted.Average() / 1024:F0} KB");
}

if (sampled > 0)
{
    Console.WriteLine($"allocations sampled (one event per ~100 KB): {sampled / 1e6:F1} MB, by type:");
    foreach (var (k, v) in byType.OrderByDescending(x => x.Value).Take(top))
    {
        Console.WriteLine($"  {v * 100.0 / sampled,6:F2} %  {k}");
    }
}

foreach (var (type, perStack) in stacks.OrderByDescending(x => x.Value.Values.Sum()).Take(10))
{
    Console.WriteLine($"== {type}: {perStack.Values.Sum() * 100.0 / sampled:F2} %");
    foreach (var (stack, bytes) in perStack.OrderByDescending(x => x.Value).Take(3))
    {
        Console.WriteLine($"  {bytes * 100.0 / sampled:F2} %  {stack}");
    }
}

return 0;
