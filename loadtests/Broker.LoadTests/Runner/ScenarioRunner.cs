using HdrHistogram;
using System.Diagnostics;

namespace Broker.LoadTests.Runner;

/// <summary>
/// Runs one scenario: set-up, warm-up (the first simulation's shape), the measured simulations, drain (until every
/// owed message arrived or --drain ran out), teardown. A sampler takes one <see cref="Sample"/> a second for the
/// live view and the charts. The whole run is bounded by --timeout.
/// </summary>
public sealed class ScenarioRunner(Scenario scenario, ScenarioContext context, Action<Sample, RunMetrics>? onSample = null)
{
    private readonly RunMetrics _metrics = context.Metrics;
    private readonly RunOptions _options = context.Options;

    public async Task<RunResult> RunAsync(string commandLine)
    {
        var load = _options.Load ?? scenario.DefaultLoad;
        var loadTime = load.Aggregate(TimeSpan.Zero, (t, l) => t + l.Duration);
        var timeout = _options.Timeout ?? _options.WarmUp + loadTime + Drain + TimeSpan.FromSeconds(120);
        using var cts = new CancellationTokenSource(timeout);
        var result = new RunResult
        {
            Scenario = scenario.Name, CommandLine = commandLine, StartedUtc = DateTime.UtcNow,
            Targets = _options.Targets.Select(t => t.ToString()).ToArray(), Load = load.Select(l => l.ToString()!).ToArray(),
            WarmUpSeconds = _options.WarmUp.TotalSeconds, RateUnit = scenario.RateUnit, Cores = Environment.ProcessorCount,
        };
        var broker = BrokerProcesses.Find(_options);
        result.BrokerPids = broker?.Pids.ToArray() ?? [];
        result.BrokerPid = broker?.Pids.FirstOrDefault() is > 0 and var first ? first : null;
        result.BrokerCgroups = broker?.Cgroups.ToArray() ?? [];
        using var samplerStop = new CancellationTokenSource();
        var sampler = Task.Run(() => SampleLoopAsync(result, broker, samplerStop.Token), CancellationToken.None);
        var errors = 0L;
        var leftovers = new List<Task>();
        void OnError(Exception e)
        {
            if (Interlocked.Increment(ref errors) <= 5)
            {
                context.Log($"iteration failed: {e.GetType().Name}: {e.Message}");
            }

            _metrics.OnError($"{e.GetType().Name}: {e.Message}");
        }

        try
        {
            _metrics.Phase = RunPhase.Setup;
            await scenario.SetupAsync(cts.Token);
            result.Description = scenario.Description;
            if (_options.WarmUp > TimeSpan.Zero)
            {
                _metrics.Phase = RunPhase.WarmUp;
                await WithDuration(load[0], _options.WarmUp).RunAsync(scenario.VirtualClients, scenario.IterationAsync, OnError, leftovers, cts.Token);
            }

            _metrics.Phase = RunPhase.Measure;
            result.BrokerRssStartBytes = broker?.Rss();
            var runnerCpu0 = ProcessStats.SelfCpuTime();
            var brokerCpu0 = broker?.CpuTime();
            var measureStart = Stopwatch.GetTimestamp();
            var during = scenario.DuringMeasurementAsync(cts.Token);
            foreach (var simulation in load)
            {
                await simulation.RunAsync(scenario.VirtualClients, scenario.IterationAsync, OnError, leftovers, cts.Token);
            }

            await during;
            var measured = Stopwatch.GetElapsedTime(measureStart);
            var runnerCpu = ProcessStats.SelfCpuTime() - runnerCpu0;
            var brokerCpu = broker?.CpuTime() is { } b1 && brokerCpu0 is { } b0 ? b1 - b0 : (TimeSpan?)null;
            _metrics.Phase = RunPhase.Drain;
            result.BrokerRssEndBytes = broker?.Rss();
            result.MeasuredSeconds = measured.TotalSeconds;
            result.RunnerCpuSeconds = runnerCpu.TotalSeconds;
            result.RunnerCores = runnerCpu / measured;
            result.BrokerCpuSeconds = brokerCpu?.TotalSeconds;
            result.BrokerCores = brokerCpu is { } bc ? bc / measured : null;
            result.MeasuredCount = scenario.CountsOperations
                ? _metrics.MeasuredOperations
                : Enum.GetValues<Broker.Protocol.MqttQoS>().Sum(q => _metrics.MeasuredDeliveries(q));
            result.Rate = result.MeasuredCount / measured.TotalSeconds;
            result.BrokerCpuMicrosPerUnit = brokerCpu is { } c && result.MeasuredCount > 0 ? c.TotalMicroseconds / result.MeasuredCount : null;

            // Iterations still blocked when their simulation ended finish now (bounded by the run's token).
            await Task.WhenAll(leftovers).WaitAsync(cts.Token);
            await scenario.BeforeDrainAsync(cts.Token);
            await DrainAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            result.Warnings.Add($"the run hit its time limit ({timeout.TotalSeconds:0} s) and was cut short");
        }
        catch (Exception e)
        {
            result.Warnings.Add($"the run failed: {e.GetType().Name}: {e.Message}");
            _metrics.OnError(e.Message);
        }
        finally
        {
            _metrics.Phase = RunPhase.Done;
            try
            {
                await scenario.TeardownAsync().WaitAsync(TimeSpan.FromSeconds(60));
            }
            catch (Exception e)
            {
                result.Warnings.Add($"teardown: {e.GetType().Name}: {e.Message}");
            }

            await samplerStop.CancelAsync();
            await sampler;
        }

        Summarize(result);
        return result;
    }

    private TimeSpan Drain => _options.Drain ?? scenario.DefaultDrain;

    private static LoadSimulation WithDuration(LoadSimulation simulation, TimeSpan duration) => simulation switch
    {
        LoadSimulation.Inject i => new LoadSimulation.Inject(i.FromRate, i.ToRate, duration),
        LoadSimulation.KeepConstant k => new LoadSimulation.KeepConstant(k.Copies, duration),
        _ => simulation,
    };

    /// <summary>
    /// Waits until every owed delivery arrived or --drain ran out; when only QoS 0 messages are missing, also ends after
    /// 3 s without any arrival (QoS 0 messages may be dropped; acknowledged ones are waited for until the limit).
    /// </summary>
    private async Task DrainAsync(CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(Drain.TotalSeconds * Stopwatch.Frequency);
        var lastCount = -1L;
        var lastChange = Stopwatch.GetTimestamp();
        while (Stopwatch.GetTimestamp() < deadline && !ct.IsCancellationRequested)
        {
            var owed = _metrics.Tally();
            if (owed.All(q => q.Lost == 0))
            {
                return;
            }

            var count = _metrics.Received + _metrics.Operations;
            if (count != lastCount)
            {
                lastCount = count;
                lastChange = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(lastChange) > TimeSpan.FromSeconds(3) && owed.All(q => q.QoS == 0 || q.Lost == 0))
            {
                return;
            }

            await Task.Delay(100, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private void Summarize(RunResult result)
    {
        var h = _metrics.Latency;
        result.LatencyCount = h.TotalCount;
        if (h.TotalCount > 0)
        {
            result.LatencyP50Ms = h.GetValueAtPercentile(50) / 1000.0;
            result.LatencyP90Ms = h.GetValueAtPercentile(90) / 1000.0;
            result.LatencyP99Ms = h.GetValueAtPercentile(99) / 1000.0;
            result.LatencyP999Ms = h.GetValueAtPercentile(99.9) / 1000.0;
            result.LatencyMaxMs = h.GetMaxValue() / 1000.0;
            result.LatencyMeanMs = h.GetMean() / 1000.0;
        }

        result.PerQoS = _metrics.Tally();
        result.Errors = _metrics.Errors;
        result.LastError = _metrics.LastError;
        if (_metrics.Refused > 0)
        {
            scenario.Facts["publishes refused (v5 reason 0x80 or above; not counted as acknowledged)"] =
                _metrics.Refused.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        }

        foreach (var (k, v) in scenario.Facts)
        {
            result.Facts[k] = v;
        }

        if (result.RunnerCores >= 0.8 * result.Cores)
        {
            result.Warnings.Add($"runner saturated: the runner used {result.RunnerCores:0.00} of {result.Cores} cores while measuring; " +
                "the figures may show the runner's limit rather than the broker's");
        }
        else if (result.RunnerCores + (result.BrokerCores ?? 0) >= 0.9 * result.Cores)
        {
            result.Warnings.Add($"machine saturated: runner {result.RunnerCores:0.00} + broker {result.BrokerCores:0.00} cores of {result.Cores}; " +
                "runner and broker compete for the CPU, compare broker CPU per message rather than rates");
        }

        if (result.BrokerPid is null && result.BrokerCgroups.Length == 0)
        {
            result.Warnings.Add("broker process not found (give --broker-pid): no broker CPU or RSS");
        }
    }

    private async Task SampleLoopAsync(RunResult result, BrokerProcesses? broker, CancellationToken ct)
    {
        var clockStart = Stopwatch.GetTimestamp();
        long sent = 0, received = 0, ops = 0;
        var runnerCpu = ProcessStats.SelfCpuTime();
        var brokerCpu = broker?.CpuTime();
        var last = Stopwatch.GetTimestamp();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (true)
        {
            try
            {
                await timer.WaitForNextTickAsync(ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            var now = Stopwatch.GetTimestamp();
            var dt = Stopwatch.GetElapsedTime(last, now).TotalSeconds;
            last = now;
            var s1 = _metrics.Sent;
            var r1 = _metrics.Received;
            var o1 = _metrics.Operations;
            var rc = ProcessStats.SelfCpuTime();
            var bc = broker?.CpuTime();
            var second = (int)_metrics.Elapsed.TotalSeconds - 1;
            var h = _metrics.SecondHistogram(second);
            var sample = new Sample(
                Math.Round(Stopwatch.GetElapsedTime(clockStart, now).TotalSeconds, 1), _metrics.Phase.ToString(),
                (s1 - sent) / dt, (r1 - received) / dt, (o1 - ops) / dt,
                h is { TotalCount: > 0 } ? h.GetValueAtPercentile(50) / 1000.0 : null,
                h is { TotalCount: > 0 } ? h.GetValueAtPercentile(99) / 1000.0 : null,
                h is { TotalCount: > 0 } ? h.GetMaxValue() / 1000.0 : null,
                (rc - runnerCpu).TotalSeconds / dt,
                bc is { } b && brokerCpu is { } b0 ? (b - b0).TotalSeconds / dt : null,
                broker?.Rss() is { } rss ? rss / 1048576.0 : null);
            (sent, received, ops, runnerCpu, brokerCpu) = (s1, r1, o1, rc, bc);
            result.Series.Add(sample);
            onSample?.Invoke(sample, _metrics);
        }
    }
}
