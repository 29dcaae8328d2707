using Broker.LoadTests.Runner;
using Broker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace Broker.Tests.LoadTests;

/// <summary>One in-process broker for the connection scenarios of <see cref="ConnectionScenarioSpecs"/>.</summary>
public sealed class ConnectionBrokerFixture : IAsyncLifetime
{
    public BrokerHarness Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await BrokerHarness.StartAsync();

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>
/// Short, bounded runs of the runner's connection scenarios (connect-rate, reconnect-storm) against a broker the test
/// starts on a free loopback port: every device connects (or resumes its session), and after an outage every device
/// comes back and sees its own message flow again. They check the machinery and the broker's answers, not speed:
/// the figures are in docs/benchmarks.md ("Connections").
/// </summary>
public sealed class ConnectionScenarioSpecs(ConnectionBrokerFixture fixture, ITestOutputHelper output) : IClassFixture<ConnectionBrokerFixture>
{
    private async Task<RunResult> RunAsync(string commandLine)
    {
        var args = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["--targets", $"127.0.0.1:{fixture.Broker.Port}", "--broker-pid", Environment.ProcessId.ToString(),
                "--timeout", "90s", "--warmup", "0s", "--no-report"])
            .ToArray();
        using var log = new StringWriter();
        var result = await LoadRunner.RunForResultAsync(RunOptions.Parse(args), string.Join(' ', args), log);
        output.WriteLine(log.ToString());
        Assert.DoesNotContain(result.Warnings, w => w.StartsWith("the run", StringComparison.Ordinal));
        return result;
    }

    [Fact]
    public async Task Connect_rate_opens_every_clean_connection_and_holds_it()
    {
        var result = await RunAsync("connect-rate --max-connections 300 --clients 20 --hold 200ms");
        Assert.True(result.Errors == 0, $"{result.Errors} errors, last: {result.LastError}");
        Assert.Equal(300, result.MeasuredCount);
        Assert.Equal("300", result.Facts["connections open after hold"]);
        Assert.Equal("0", result.Facts["refused (CONNACK code not 0)"]);
        Assert.True(result.LatencyCount == 300, $"{result.LatencyCount} CONNACK latencies recorded");
        Assert.True(result.Rate > 0);
    }

    [Fact]
    public async Task Connect_rate_with_persistent_sessions_resumes_each_with_session_present()
    {
        var result = await RunAsync("connect-rate --persistent --away 200ms --max-connections 40 --clients 10 --hold 200ms");
        Assert.True(result.Errors == 0, $"{result.Errors} errors, last: {result.LastError}");
        Assert.Equal(40, result.MeasuredCount);
        Assert.Equal("0", result.Facts["resumed without session present"]);
    }

    [Fact]
    public async Task Reconnect_storm_brings_every_device_back_and_its_messages_flow_again()
    {
        var result = await RunAsync("reconnect-storm --max-connections 150 --clients 20 --backoff 500ms");
        Assert.Equal("150", result.Facts["devices connected before the outage"]);
        Assert.Equal("150 / 150 of 150", result.Facts["devices back (CONNACK) / messages flowing"]);
        Assert.Equal(150, result.MeasuredCount);
        Assert.Equal("0", result.Facts["refused (CONNACK code not 0)"]);
        Assert.True(result.Facts.ContainsKey("messages flow again after"), "no time until messages flow again");
        Assert.True(result.Facts.ContainsKey("broker RSS peak during the storm"), "no RSS peak");
    }
}
