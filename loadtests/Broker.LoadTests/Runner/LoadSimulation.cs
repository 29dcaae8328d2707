using System.Diagnostics;
using System.Globalization;

namespace Broker.LoadTests.Runner;

/// <summary>
/// How many scenario iterations run and when, in NBomber's terms:
/// <list type="bullet">
/// <item><c>inject:N:T</c> — start N iterations per second (spread over the virtual clients) for T;</item>
/// <item><c>ramp:A-B:T</c> — like inject, the rate moving linearly from A to B per second over T;</item>
/// <item><c>constant:K:T</c> — keep K virtual clients iterating back to back, as fast as the broker takes, for T.</item>
/// </list>
/// T is a duration such as <c>10s</c>, <c>500ms</c> or <c>2m</c>. Several are run one after the other.
/// </summary>
public abstract record LoadSimulation(TimeSpan Duration)
{
    public sealed record Inject(double FromRate, double ToRate, TimeSpan During) : LoadSimulation(During)
    {
        public override string ToString() =>
            FromRate == ToRate ? $"inject {FromRate:0.#}/s for {During.TotalSeconds:0.#}s" : $"ramp {FromRate:0.#}->{ToRate:0.#}/s over {During.TotalSeconds:0.#}s";

        /// <summary>Iterations per second at <paramref name="t"/>.</summary>
        public double RateAt(TimeSpan t) => FromRate + (ToRate - FromRate) * Math.Min(t.TotalSeconds, During.TotalSeconds) / During.TotalSeconds;

        /// <summary>Iterations due by <paramref name="t"/> (the integral of the rate).</summary>
        public double DueBy(TimeSpan t)
        {
            var s = Math.Min(t.TotalSeconds, During.TotalSeconds);
            return FromRate * s + (ToRate - FromRate) * s * s / (2 * During.TotalSeconds);
        }
    }

    public sealed record KeepConstant(int Copies, TimeSpan During) : LoadSimulation(During)
    {
        public override string ToString() => $"keep {Copies} constant for {During.TotalSeconds:0.#}s";
    }

    public static IReadOnlyList<LoadSimulation> ParseList(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Parse).ToArray();

    public static LoadSimulation Parse(string value)
    {
        var parts = value.Split(':');
        if (parts.Length != 3)
        {
            throw new ArgumentException($"--load: '{value}' is not inject:N:T, ramp:A-B:T or constant:K:T");
        }

        var during = ParseDuration(parts[2]);
        return parts[0] switch
        {
            "inject" => new Inject(Number(parts[1]), Number(parts[1]), during),
            "ramp" when parts[1].Split('-') is [var a, var b] => new Inject(Number(a), Number(b), during),
            "constant" => new KeepConstant((int)Number(parts[1]), during),
            _ => throw new ArgumentException($"--load: '{value}' is not inject:N:T, ramp:A-B:T or constant:K:T"),
        };

        static double Number(string s) => double.Parse(s.TrimEnd('/', 's'), CultureInfo.InvariantCulture);
    }

    public static TimeSpan ParseDuration(string value)
    {
        value = value.Trim();
        double Num(int suffix) => double.Parse(value[..^suffix], CultureInfo.InvariantCulture);
        return value.EndsWith("ms", StringComparison.Ordinal) ? TimeSpan.FromMilliseconds(Num(2))
            : value.EndsWith('s') ? TimeSpan.FromSeconds(Num(1))
            : value.EndsWith('m') ? TimeSpan.FromMinutes(Num(1))
            : TimeSpan.FromSeconds(double.Parse(value, CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Runs <paramref name="iteration"/> for virtual clients 0..clients-1 as the simulation says, until its duration
    /// ends or <paramref name="ct"/> is cancelled. Each client's iterations run one after the other, so a client's
    /// connection has one writer. Returns at the end of the duration (plus one second of grace) even when iterations
    /// are still blocked (a QoS 0 flood waiting on TCP back-pressure): those loops end after their current iteration
    /// and are added to <paramref name="leftovers"/> for the caller to await.
    /// </summary>
    public async Task RunAsync(int clients, Func<int, CancellationToken, Task> iteration, Action<Exception> onError,
        ICollection<Task> leftovers, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var end = Duration;
        var active = this is KeepConstant k ? Math.Min(k.Copies, clients) : clients;
        var loops = Enumerable.Range(0, active).Select(client => Task.Run(async () =>
        {
            long mine = 0;
            while (!ct.IsCancellationRequested)
            {
                var elapsed = Stopwatch.GetElapsedTime(started);
                if (elapsed >= end)
                {
                    break;
                }

                if (this is Inject inject && mine >= inject.DueBy(elapsed) / active)
                {
                    // Not due yet: sleep until the next iteration is due at the current rate (at least the timer's
                    // grain of a millisecond, at most 100 ms so a ramp from 0 notices its rate rising).
                    var rate = inject.RateAt(elapsed) / active;
                    var wait = rate > 0 ? (mine + 1 - inject.DueBy(elapsed) / active) / rate : 0.1;
                    await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(wait, 0.001, 0.1)), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                try
                {
                    await iteration(client, ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    onError(e);
                    // A failing client backs off rather than spinning on the error.
                    await Task.Delay(100, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                mine++;
            }
        }, CancellationToken.None)).ToArray();
        var all = Task.WhenAll(loops);
        await Task.WhenAny(all, Task.Delay(end + TimeSpan.FromSeconds(1), ct));
        if (!all.IsCompleted)
        {
            leftovers.Add(all);
        }
    }
}
