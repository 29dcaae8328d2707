using System.Diagnostics;
using System.Text;
using Broker.Protocol.Packets;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using BrokerReason = Broker.Protocol.MqttReasonCode;

namespace Broker.Tests.EndToEnd;

/// <summary>CONNECT and CONNACK: session present, client identifiers, protocol level, credentials, v5 limits, keep alive.</summary>
public sealed class ConnectSpecs(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private readonly BrokerHarness _broker = fixture.Broker;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Session_present_is_false_for_a_new_session_and_true_when_a_persistent_one_resumes_MQTT_3_2_2_2_and_3(
        MqttProtocolVersion version)
    {
        var id = E2E.Id("present", version);
        var (first, firstResult, _) = await _broker.ConnectPersistentAsync(version, id);
        Assert.Equal(MqttClientConnectResultCode.Success, firstResult.ResultCode);
        Assert.False(firstResult.IsSessionPresent);
        await first.DisconnectAsync();

        var (second, secondResult, _) = await _broker.ConnectPersistentAsync(version, id);
        Assert.True(secondResult.IsSessionPresent);
        await second.DisconnectAsync();

        // [MQTT-3.2.2-1] Clean Start 1 always answers session present 0 (and discards the session).
        var clean = _broker.NewClient();
        var cleanResult = await clean.ConnectAsync(_broker.Options(version, id).WithCleanStart(true).Build());
        Assert.False(cleanResult.IsSessionPresent);
    }

    [Fact]
    public async Task V311_empty_client_id_with_clean_session_is_accepted_MQTT_3_1_3_6()
    {
        var client = _broker.NewClient();
        var result = await client.ConnectAsync(_broker.Options(MqttProtocolVersion.V311, "").WithCleanStart(true).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.False(result.IsSessionPresent);

        // The connection is usable: it can subscribe and receive.
        var topic = E2E.Id("anon", MqttProtocolVersion.V311);
        var received = new MessageCollector(client);
        await client.SubscribeAsync(topic);
        await client.PublishAsync(topic, "hello");
        Assert.Equal("hello", E2E.Text((await received.WaitForAsync(1))[0]));
    }

    [Fact]
    public async Task V311_empty_client_id_with_clean_session_0_is_rejected_with_IdentifierRejected_MQTT_3_1_3_8()
    {
        var (raw, connAck) = await RawMqttClient.ConnectAsync(
            _broker.Port, MqttProtocolVersion.V311, "", c => c with { CleanStart = false });
        await using var _ = raw;
        Assert.Equal(0x02, connAck.ReasonCode);
        Assert.False(connAck.SessionPresent);
        Assert.Empty(await raw.ExpectClosedAsync());
    }

    [Fact]
    public async Task V5_empty_client_id_gets_an_assigned_client_identifier_in_CONNACK()
    {
        var client = _broker.NewClient();
        var result = await client.ConnectAsync(_broker.Options(MqttProtocolVersion.V500, "").WithCleanStart(true).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.False(string.IsNullOrEmpty(result.AssignedClientIdentifier));

        var second = _broker.NewClient();
        var secondResult = await second.ConnectAsync(_broker.Options(MqttProtocolVersion.V500, "").WithCleanStart(true).Build());
        Assert.NotEqual(result.AssignedClientIdentifier, secondResult.AssignedClientIdentifier);
    }

    [Fact]
    public async Task Unsupported_protocol_level_gets_CONNACK_0x01_and_the_connection_is_closed_MQTT_3_1_2_2()
    {
        await using var raw = await RawMqttClient.OpenAsync(_broker.Port, MqttProtocolVersion.V311);
        // CONNECT "MQTT" level 6, clean session, keep alive 60, client id "x".
        byte[] body = [0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01, (byte)'x'];
        await raw.SendRawAsync([0x10, (byte)body.Length, .. body]);

        var packets = await raw.ExpectClosedAsync();
        var connAck = Assert.IsType<MqttConnAckPacket>(Assert.Single(packets));
        Assert.Equal(0x01, connAck.ReasonCode);
        Assert.False(connAck.SessionPresent);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Username_and_password_are_accepted(MqttProtocolVersion version)
    {
        var client = _broker.NewClient();
        var result = await client.ConnectAsync(_broker.Options(version, E2E.Id("creds", version))
            .WithCredentials("alice", "secret").Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task V5_CONNACK_announces_the_server_limits_and_features()
    {
        var client = _broker.NewClient();
        var result = await client.ConnectAsync(_broker.Options(MqttProtocolVersion.V500, E2E.Id("limits", MqttProtocolVersion.V500)).Build());
        Assert.Equal((ushort)1024, result.ReceiveMaximum);
        Assert.True(result.MaximumPacketSize is null or 0, $"Maximum Packet Size {result.MaximumPacketSize}: absent means the protocol's limit");
        Assert.Equal(64, result.TopicAliasMaximum);
        Assert.True(result.RetainAvailable);
        Assert.True(result.WildcardSubscriptionAvailable);
        Assert.True(result.SharedSubscriptionAvailable);
        Assert.True(result.SubscriptionIdentifiersAvailable);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Silent_client_is_disconnected_after_one_and_a_half_keep_alive_periods_and_its_will_is_published_MQTT_3_1_2_24(
        MqttProtocolVersion version)
    {
        var id = E2E.Id("keepalive", version);
        var watcher = await _broker.ConnectAsync(version, id + "-watcher");
        var wills = new MessageCollector(watcher);
        await watcher.SubscribeAsync(id + "/will");

        var (raw, connAck) = await RawMqttClient.ConnectAsync(_broker.Port, version, id, c => c with
        {
            KeepAlive = 1,
            Will = new MqttWill { Topic = id + "/will", Payload = Encoding.UTF8.GetBytes("gone silent"), QoS = Broker.Protocol.MqttQoS.AtLeastOnce },
        });
        await using var _ = raw;
        Assert.Equal(0, connAck.ReasonCode);
        var clock = Stopwatch.StartNew();

        var packets = await raw.ExpectClosedAsync(TimeSpan.FromSeconds(5));
        var elapsed = clock.Elapsed;
        Assert.InRange(elapsed, TimeSpan.FromSeconds(1.2), TimeSpan.FromSeconds(3.2));
        if (version == MqttProtocolVersion.V500)
        {
            var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets));
            Assert.Equal(BrokerReason.KeepAliveTimeout, disconnect.ReasonCode);
        }
        else
        {
            Assert.Empty(packets);
        }

        Assert.Equal("gone silent", E2E.Text((await wills.WaitForAsync(1))[0]));
    }

    [Fact]
    public async Task V5_server_keep_alive_overrides_the_client_keep_alive_when_configured()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Mqtt = o.Mqtt with { ServerKeepAlive = 1 } });
        var client = broker.NewClient();
        var result = await client.ConnectAsync(broker.Options(MqttProtocolVersion.V500, "ska")
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(60)).Build());
        Assert.Equal(1, (int)result.ServerKeepAlive);

        // A client that asked for no keep alive at all is still held to the server's 1 s.
        var (raw, connAck) = await RawMqttClient.ConnectAsync(broker.Port, MqttProtocolVersion.V500, "ska-raw", c => c with { KeepAlive = 0 });
        await using var _ = raw;
        Assert.Equal((ushort)1, connAck.ServerKeepAlive);
        var clock = Stopwatch.StartNew();
        var packets = await raw.ExpectClosedAsync(TimeSpan.FromSeconds(5));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.2), TimeSpan.FromSeconds(3.2));
        Assert.Equal(BrokerReason.KeepAliveTimeout, Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets)).ReasonCode);
    }
}
