using Broker.Node.Hosting;
using Microsoft.Extensions.Configuration;

namespace Broker.Tests.Node;

/// <summary>
/// <see cref="BrokerConfiguration.Load"/> on in-memory sources shaped like the real ones (environment variables arrive
/// upper-case, flags as typed): what binds, and the one line each mistake produces.
/// </summary>
public sealed class BrokerConfigurationSpecs
{
    private static (Broker.Configuration.BrokerOptions? Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] values) =>
        BrokerConfiguration.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());

    [Fact]
    public void Upper_case_keys_from_environment_variables_should_bind()
    {
        // BROKER__MQTT__PORT=1884 arrives as "MQTT:PORT" (README "Configuration").
        var (options, errors) = Load(("MQTT:PORT", "1884"), ("SESSIONS:MAXINFLIGHT", "8"), ("CLUSTER:SEEDNODES", "akka.tcp://broker@127.0.0.1:4053"));
        Assert.Empty(errors);
        Assert.Equal(1884, options!.Mqtt.Port);
        Assert.Equal(8, options.Sessions.MaxInflight);
        Assert.Equal(["akka.tcp://broker@127.0.0.1:4053"], options.Cluster.SeedNodes);
    }

    [Fact]
    public void Indexed_seed_nodes_from_flags_should_win_over_an_empty_array_in_appsettings()
    {
        // appsettings.json's "SeedNodes": [] arrives as "Cluster:SeedNodes" = "", next to --Cluster:SeedNodes:0=...
        var (options, errors) = Load(("Cluster:SeedNodes", ""), ("Cluster:SeedNodes:0", "akka.tcp://broker@127.0.0.1:4053"),
            ("Cluster:SeedNodes:1", "akka.tcp://broker@127.0.0.1:4054"));
        Assert.Empty(errors);
        Assert.Equal(["akka.tcp://broker@127.0.0.1:4053", "akka.tcp://broker@127.0.0.1:4054"], options!.Cluster.SeedNodes);

        (options, errors) = Load(("Cluster:SeedNodes", ""));
        Assert.Empty(errors);
        Assert.Empty(options!.Cluster.SeedNodes);
    }

    [Fact]
    public void Unknown_setting_should_be_named_with_its_value()
    {
        var (options, errors) = Load(("Mqtt:Prot", "1"));
        Assert.Null(options);
        var error = Assert.Single(errors);
        Assert.StartsWith("Mqtt:Prot = '1' is not a known setting of section Mqtt", error);
        Assert.Contains("Port", error[error.IndexOf("known", StringComparison.Ordinal)..], StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_section_should_be_named()
    {
        var (options, errors) = Load(("Mqt:Port", "1"));
        Assert.Null(options);
        // Sections are added by later work (Auth, ...): the message starts with the original ones.
        Assert.StartsWith("Mqt is not a known section: expected one of Mqtt, Sessions, Node, Storage, Cluster", Assert.Single(errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Comma_separated_seed_nodes_should_be_split_and_each_checked()
    {
        var (options, errors) = Load(("Cluster:SeedNodes", "akka.tcp://broker@10.0.0.1:4053, akka.tcp://broker@10.0.0.2:4053"));
        Assert.Empty(errors);
        Assert.Equal(["akka.tcp://broker@10.0.0.1:4053", "akka.tcp://broker@10.0.0.2:4053"], options!.Cluster.SeedNodes);

        (options, errors) = Load(("Cluster:SeedNodes", "foo"), ("Cluster:Port", "4054"));
        Assert.Null(options);
        Assert.Equal(
            "Cluster:SeedNodes = 'foo' is not an Akka address like akka.tcp://broker@127.0.0.1:4053",
            Assert.Single(errors));
    }

    [Fact]
    public void Seed_node_list_should_bind_as_an_array()
    {
        var (options, errors) = Load(("Cluster:SeedNodes:0", "akka.tcp://broker@10.0.0.1:4053"), ("Cluster:Port", "4054"));
        Assert.Empty(errors);
        Assert.Equal(["akka.tcp://broker@10.0.0.1:4053"], options!.Cluster.SeedNodes);
        Assert.Equal(4054, options.Cluster.Port);
    }

    [Theory]
    [InlineData("Mqtt:Port", "abc", "Mqtt:Port = 'abc' is not a valid whole number (32-bit)")]
    [InlineData("Mqtt:Port", "70000", "Mqtt:Port = 70000 is out of range: allowed 0 to 65535")]
    [InlineData("Mqtt:Address", "nowhere", "Mqtt:Address = 'nowhere' is not an IP address (for example 127.0.0.1 or 0.0.0.0)")]
    [InlineData("Sessions:MaxInflight", "0", "Sessions:MaxInflight = 0 is out of range: allowed 1 to 65535")]
    [InlineData("Sessions:QueueFullPolicy", "drop", "Sessions:QueueFullPolicy = 'drop' is not supported: allowed backpressure, drop-oldest or drop-newest")]
    [InlineData("Sessions:MaxQueuedBytes", "100", "Sessions:MaxQueuedBytes = 100 is out of range: allowed 1024 to 9223372036854775807")]
    [InlineData("Sessions:MaxPublisherHold", "15", "Sessions:MaxPublisherHold = 15 is out of range: allowed 0.1 s to below Mqtt:DurableAckTimeout (15 s)")]
    public void Bad_value_should_produce_one_line_naming_key_and_value(string key, string value, string expected)
    {
        var (options, errors) = Load((key, value));
        Assert.Null(options);
        Assert.Equal(expected, Assert.Single(errors));
    }

    [Fact]
    public void Flow_control_keys_should_bind()
    {
        var (options, errors) = Load(("Sessions:QueueFullPolicy", "drop-newest"), ("Sessions:MaxQueuedBytes", "1048576"),
            ("Sessions:MaxPublisherHold", "2.5"));
        Assert.Empty(errors);
        Assert.Equal(Broker.Sessions.QueueFullPolicy.DropNewest, options!.Sessions.Policy);
        Assert.Equal(1048576, options.Sessions.MaxQueuedBytes);
        Assert.Equal(2.5, options.Sessions.MaxPublisherHold);
        Assert.Equal(Broker.Sessions.QueueFullPolicy.Backpressure, Load().Options!.Sessions.Policy);
    }

    [Fact]
    public void WebSocket_keys_should_bind_and_a_wss_port_without_certificate_should_be_named()
    {
        var (options, errors) = Load(("Mqtt:WebSocket:Port", "8083"), ("Mqtt:WebSocket:Path", "/ws"),
            ("Mqtt:WebSocket:AllowedOrigins:0", "https://dash.example.com"), ("Mqtt:WebSocket:MaxMessageSize", "65536"));
        Assert.Empty(errors);
        Assert.Equal(8083, options!.Mqtt.WebSocket.Port);
        Assert.Equal(-1, options.Mqtt.WebSocket.TlsPort);
        Assert.Equal("/ws", options.Mqtt.WebSocket.Path);
        Assert.Equal(["https://dash.example.com"], options.Mqtt.WebSocket.AllowedOrigins);
        Assert.Equal(65536, options.Mqtt.WebSocket.MaxMessageSize);
        Assert.False(Load().Options!.Mqtt.WebSocket.Enabled);

        (options, errors) = Load(("Mqtt:WebSocket:TlsPort", "8084"));
        Assert.Null(options);
        Assert.Equal("Mqtt:WebSocket:TlsPort = 8084 needs a certificate: set Mqtt:Tls:Certificate", Assert.Single(errors));

        (_, errors) = Load(("Mqtt:WebSocket:Port", "1883"));
        Assert.Equal("Mqtt:WebSocket:Port = 1883 is already the port of the MQTT TCP listener", Assert.Single(errors));

        (_, errors) = Load(("Mqtt:WebSocket:Port", "8083"), ("Mqtt:WebSocket:Path", "mqtt"), ("Mqtt:WebSocket:AllowedOrigins:0", "dash.example.com"));
        Assert.Equal(
            ["Mqtt:WebSocket:Path = 'mqtt' must be an absolute URL path like /mqtt",
             "Mqtt:WebSocket:AllowedOrigins = 'dash.example.com' is not an origin like https://dashboard.example.com or http://localhost:8080"],
            errors);
    }
}
