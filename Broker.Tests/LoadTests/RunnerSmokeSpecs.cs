using Broker.LoadTests.Runner;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace Broker.Tests.LoadTests;

/// <summary>One in-process broker for every smoke run of <see cref="RunnerSmokeSpecs"/>.</summary>
public sealed class SmokeBrokerFixture : IAsyncLifetime
{
    public BrokerHarness Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await BrokerHarness.StartAsync();

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>
/// A short, bounded run of every scenario of the load-test runner (loadtests/Broker.LoadTests) against a broker the
/// test starts, so the runner cannot rot: each must deliver messages (or complete operations), with no loss where
/// the broker promised delivery and no errors. The broker runs in this process, so the runner is told that the
/// broker's PID is its own (CPU figures then add up both). The failover scenario has its own spec
/// (<see cref="FailoverSmokeSpecs"/>) with three node processes.
/// </summary>
public sealed class RunnerSmokeSpecs(SmokeBrokerFixture fixture, ITestOutputHelper output) : IClassFixture<SmokeBrokerFixture>
{
    private async Task<RunResult> RunAsync(string commandLine, string? reportDir = null)
    {
        var args = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["--targets", $"127.0.0.1:{fixture.Broker.Port}", "--broker-pid", Environment.ProcessId.ToString(),
                "--timeout", "60s", "--drain", "15s"])
            .Concat(reportDir is null ? ["--no-report"] : ["--report-dir", reportDir])
            .ToArray();
        using var log = new StringWriter();
        var result = await LoadRunner.RunForResultAsync(RunOptions.Parse(args), string.Join(' ', args), log);
        output.WriteLine(log.ToString());
        Assert.DoesNotContain(result.Warnings, w => w.StartsWith("the run", StringComparison.Ordinal));
        Assert.True(result.Errors == 0, $"{result.Errors} errors, last: {result.LastError}");
        Assert.True(result.MeasuredCount > 0, "nothing was measured");
        return result;
    }

    private static void AssertDeliveredWithoutLoss(RunResult result)
    {
        Assert.NotEmpty(result.PerQoS);
        foreach (var q in result.PerQoS)
        {
            Assert.True(q.Expected > 0, $"QoS {q.QoS}: no delivery was owed");
            Assert.True(q.Lost == 0, $"QoS {q.QoS}: {q.Lost} of {q.Expected} owed deliveries lost");
        }

        Assert.True(result.LatencyCount > 0, "no latency samples");
    }

    [Fact]
    public async Task Fan_in_at_QoS_0_and_1_delivers_everything_and_writes_reports()
    {
        var dir = Directory.CreateTempSubdirectory("load-report-").FullName;
        try
        {
            var result = await RunAsync("fan-in --clients 6 --qos 0,1 --load inject:300:2s --warmup 500ms", dir);
            AssertDeliveredWithoutLoss(result);
            Assert.Equal([0, 1], result.PerQoS.Select(q => q.QoS));
            Assert.Contains("<svg", File.ReadAllText(Path.Combine(dir, "report.html")), StringComparison.Ordinal);
            Assert.Contains("| lost / duplicates | 0 / ", File.ReadAllText(Path.Combine(dir, "report.md")), StringComparison.Ordinal);
            Assert.Contains("\"LatencyP99Ms\"", File.ReadAllText(Path.Combine(dir, "report.json")), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Fan_out_delivers_every_message_to_every_subscriber()
    {
        var result = await RunAsync("fan-out --clients 1 --subscribers 10 --qos 1 --load inject:100:2s --warmup 500ms");
        AssertDeliveredWithoutLoss(result);
        Assert.Equal(result.PerQoS[0].Acked * 10, result.PerQoS[0].Expected);
    }

    // Not a flood (floods into slow subscribers are BackpressureFloodSpecs): a short QoS 2 run, checked for duplicates.
    [Fact]
    public async Task Point_to_point_at_QoS_2_delivers_exactly_once()
    {
        var result = await RunAsync("point-to-point --clients 5 --qos 2 --load inject:200:2s --warmup 500ms");
        AssertDeliveredWithoutLoss(result);
        Assert.Equal(0, result.TotalDuplicates);
    }

    [Fact]
    public async Task Request_response_answers_every_request_with_its_correlation_data()
    {
        var result = await RunAsync("request-response --clients 5 --qos 1 --load inject:100:2s --warmup 500ms");
        AssertDeliveredWithoutLoss(result);
        Assert.Equal("0", result.Facts["responses with wrong correlation data"]);
    }

    [Fact]
    public async Task Persistent_sessions_going_offline_get_every_acknowledged_message()
    {
        var result = await RunAsync("persistent-sessions --clients 2 --subscribers 3 --load inject:40:4s --online 1s --offline 500ms --warmup 500ms");
        AssertDeliveredWithoutLoss(result);
        Assert.True(int.Parse(result.Facts["offline/online cycles"]) > 0, "no subscriber went offline");
        Assert.Equal("0", result.Facts["reconnects without session present"]);
    }

    [Fact]
    public async Task Durable_at_QoS_1_and_2_gets_every_acknowledged_message_into_every_persistent_session()
    {
        var result = await RunAsync("durable --clients 4 --subscribers 2 --qos 1,2 --load inject:200:2s --warmup 500ms");
        AssertDeliveredWithoutLoss(result);
        Assert.Equal(2, result.PerQoS.Length);
        Assert.All(result.PerQoS, q =>
        {
            Assert.Equal(q.Sent, q.Acked);
            Assert.True(q.Received >= 2 * q.Acked, $"QoS {q.QoS}: {q.Received} received for {q.Acked} acknowledged into two sessions");
        });
        Assert.Equal(0, result.PerQoS.Single(q => q.QoS == 2).Duplicates);
        Assert.Equal("0", result.Facts["publishes refused"]);
    }

    [Fact]
    public async Task Retained_storm_fetches_every_retained_message()
    {
        var result = await RunAsync("retained-storm --topics 100 --clients 2 --load inject:2:2s --warmup 0s");
        Assert.Equal("0", result.Facts["fetches that did not get every retained message"]);
        Assert.All(result.PerQoS, q => Assert.Equal(0, q.Lost));
        Assert.True(result.PerQoS.Single().Received >= 100, "no fetch received the retained messages");
    }

    [Fact]
    public async Task Connect_storm_opens_and_holds_the_connections()
    {
        var result = await RunAsync("connect-storm --clients 4 --load inject:40:2s --max-connections 50 --hold 200ms --warmup 0s");
        Assert.Equal(result.MeasuredCount.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), result.Facts["connections open after hold"]);
        Assert.True(result.LatencyCount > 0);
    }

    [Fact]
    public async Task A_failed_threshold_makes_the_exit_code_2()
    {
        var result = await RunAsync("point-to-point --clients 1 --qos 0 --load inject:50:1s --warmup 0s --max-p99-ms 0.0001 --min-rate 1000000");
        Assert.Equal(2, LoadRunner.ExitCode(result));
        Assert.Equal(2, result.ThresholdFailures.Count);
    }

    [Fact]
    public void Scale_out_options_parse_and_a_bad_value_names_the_option()
    {
        var o = RunOptions.Parse(["point-to-point", "--spread", "even", "--persistent"]);
        Assert.Equal((PairSpread.Even, true), (o.Spread, o.Persistent));
        Assert.Equal(PairSpread.Cross, RunOptions.Parse(["point-to-point"]).Spread);
        Assert.Contains("--spread", Assert.Throws<ArgumentException>(() => RunOptions.Parse(["point-to-point", "--spread", "diagonal"])).Message);
        Assert.Contains("--broker-cgroup", Assert.Throws<ArgumentException>(
            () => RunOptions.Parse(["point-to-point", "--broker-cgroup", "/nonexistent/cgroup"])).Message);
    }

    [Theory]
    [InlineData("inject:100:2s", 100.0, 100.0, 2.0)]
    [InlineData("ramp:0-200:4s", 0.0, 200.0, 4.0)]
    public void Load_simulations_parse_and_schedule_the_integral_of_their_rate(string text, double from, double to, double seconds)
    {
        var inject = Assert.IsType<LoadSimulation.Inject>(LoadSimulation.Parse(text));
        Assert.Equal((from, to, seconds), (inject.FromRate, inject.ToRate, inject.Duration.TotalSeconds));
        Assert.Equal((from + to) / 2 * seconds, inject.DueBy(TimeSpan.FromSeconds(seconds)), 6);
        Assert.Throws<ArgumentException>(() => Target.Parse("10.0.0.1:1883"));
    }
}
