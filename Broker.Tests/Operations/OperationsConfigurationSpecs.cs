using Broker.Node.Hosting;
using Microsoft.Extensions.Configuration;

namespace Broker.Tests.Operations;

/// <summary>The Metrics, Sys and Management settings: bound from configuration, and a bad value names its key.</summary>
public sealed class OperationsConfigurationSpecs
{
    private static (Configuration.BrokerOptions? Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] values) =>
        BrokerConfiguration.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());

    [Fact]
    public void Defaults_are_metrics_off_SYS_off_and_no_API()
    {
        var (options, errors) = Load();
        Assert.Empty(errors);
        Assert.Equal(0, options!.Metrics.Port);
        Assert.Equal("127.0.0.1", options.Metrics.Address);
        Assert.Equal(0, options.Sys.Interval);
        Assert.Equal("", options.Management.Token);
    }

    [Fact]
    public void The_settings_bind()
    {
        var (options, errors) = Load(("METRICS:PORT", "9100"), ("Metrics:Address", "0.0.0.0"), ("Sys:Interval", "5"),
            ("Management:Token", "0123456789abcdef0123"));
        Assert.Empty(errors);
        Assert.Equal(9100, options!.Metrics.Port);
        Assert.Equal("0.0.0.0", options.Metrics.Address);
        Assert.Equal(5, options.Sys.Interval);
        Assert.Equal("0123456789abcdef0123", options.Management.Token);
    }

    [Theory]
    [InlineData("Metrics:Port", "70000", "Metrics:Port = 70000 is out of range")]
    [InlineData("Metrics:Address", "localhost", "Metrics:Address = 'localhost' is not an IP address")]
    [InlineData("Sys:Interval", "-1", "Sys:Interval = -1 is out of range")]
    [InlineData("Metrics:OtlpEndpoint", "collector:4318", "Metrics:OtlpEndpoint = 'collector:4318' is not an http:// or https:// address")]
    [InlineData("Metrics:OtlpIntervalSeconds", "0", "Metrics:OtlpIntervalSeconds = 0 is out of range")]
    [InlineData("Sys:Intervall", "5", "Sys:Intervall = '5' is not a known setting of section Sys")]
    [InlineData("Management:Token", "short", "Management:Token is set but Metrics:Port = 0")]
    public void A_bad_value_is_refused_naming_the_key(string key, string value, string expected)
    {
        var (options, errors) = Load((key, value));
        Assert.Null(options);
        Assert.Contains(errors, e => e.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_short_token_is_refused()
    {
        var (_, errors) = Load(("Metrics:Port", "9100"), ("Management:Token", "short"));
        Assert.Contains("Management:Token is 5 characters long: use at least 16", errors);
    }
}
