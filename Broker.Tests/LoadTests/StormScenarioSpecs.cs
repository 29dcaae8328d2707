using Broker.LoadTests.Runner;
using Broker.Tests.Durability;
using Xunit.Abstractions;

namespace Broker.Tests.LoadTests;

/// <summary>
/// The load runner's "storm" scenario against a real node process: malformed, slow, half-open and churning clients,
/// a noisy publisher whose messages fill the half-open sessions' queues, and a <c>#</c> subscriber; a well-behaved
/// QoS 1 publisher's PUBACKs must not wait on them, with nothing it was acknowledged for lost. The half-open
/// queues are handled by the hold bound (the noisy publisher is refused 0x97), not by everyone's acknowledgements:
/// the well-behaved publisher is never refused, loses nothing and never waits anywhere near a hold.
/// </summary>
public sealed class StormScenarioSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("broker-storm-").FullName;

    [Fact]
    public async Task A_well_behaved_publisher_is_never_held_refused_or_robbed_through_the_storm()
    {
        using var node = await BrokerNodeProcess.StartAsync($"--Node:DataDir={_dataDir}", "--Sessions:MaxPublisherHold=1");
        string[] args = ["storm", "--load", "inject:50:8s", "--warmup", "2s", "--drain", "5s", "--timeout", "90s",
            "--targets", $"127.0.0.1:{node.MqttPort}", "--broker-pid", node.Process.Pid.ToString(), "--no-report"];
        using var log = new StringWriter();
        var result = await LoadRunner.RunForResultAsync(RunOptions.Parse(args), string.Join(' ', args), log);
        output.WriteLine(log.ToString());
        output.WriteLine($"PUBACK p50 {result.LatencyP50Ms} ms, p99 {result.LatencyP99Ms} ms, max {result.LatencyMaxMs} ms");
        foreach (var (k, v) in result.Facts)
        {
            output.WriteLine($"{k}: {v}");
        }

        Assert.True(result.Errors == 0, $"{result.Errors} errors, last: {result.LastError}");
        Assert.True(result.MeasuredCount > 100, "too few acknowledged publishes were measured");
        Assert.Equal("0", result.Facts["well-behaved publishes refused"]);
        var ok = Assert.Single(result.PerQoS);
        Assert.Equal(0, ok.Lost);

        // The storm really ran: malformed connections were made, and the half-open queues filled and refused the noise.
        var storm = result.Facts["storm: malformed connections, slow bytes sent, churn cycles, noisy publishes refused"]
            .Split(", ").Select(v => long.Parse(v, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.All(storm, v => Assert.True(v > 0, $"a part of the storm did not happen: {string.Join(", ", storm)}"));

        // Never held by the full half-open queues (a hold costs Sessions:MaxPublisherHold, 1 s here). The 50 ms p99
        // bound itself is a benchmark figure (docs/benchmarks.md, loadtests/compare-flow.sh), not asserted here: on a
        // shared machine a test cannot own the CPU that wall-clock bound needs.
        Assert.True(result.LatencyMaxMs < 1000, $"the well-behaved publisher waited {result.LatencyMaxMs} ms for a PUBACK: held by a queue it does not feed");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
