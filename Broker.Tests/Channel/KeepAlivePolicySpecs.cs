using Broker.Channel;

namespace Broker.Tests.Channel;

/// <summary>Mqtt:MaxKeepAlive (Mosquitto's max_keepalive) and Mqtt:ServerKeepAlive (v5 Server Keep Alive, MQTT-v5.0 3.2.2.3.14).</summary>
public sealed class KeepAlivePolicySpecs
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Without_settings_the_clients_keep_alive_stands(bool v5)
    {
        Assert.Equal(new KeepAliveGrant(0, null), KeepAlivePolicy.Resolve(0, v5, serverKeepAlive: 0, maxKeepAlive: 0));
        Assert.Equal(new KeepAliveGrant(600, null), KeepAlivePolicy.Resolve(600, v5, 0, 0));
    }

    [Theory]
    [InlineData(100, 60)] // above the maximum
    [InlineData(0, 60)] // no keep alive at all
    [InlineData(60, 60)] // exactly the maximum: stands
    [InlineData(30, 30)] // shorter: stands
    public void Max_keep_alive_lowers_only_longer_ones_and_0(ushort client, ushort expected)
    {
        var v5 = KeepAlivePolicy.Resolve(client, v5: true, serverKeepAlive: 0, maxKeepAlive: 60);
        var v311 = KeepAlivePolicy.Resolve(client, v5: false, serverKeepAlive: 0, maxKeepAlive: 60);
        Assert.Equal(expected, v5.Seconds);
        Assert.Equal(expected, v311.Seconds);

        // v5 is told in CONNACK exactly when its value changed; 3.1.1 has no way to be told.
        Assert.Equal(expected != client ? expected : null, v5.ServerKeepAlive);
        Assert.Null(v311.ServerKeepAlive);
    }

    [Fact]
    public void Server_keep_alive_replaces_every_v5_clients_value_and_leaves_3_1_1_alone()
    {
        Assert.Equal(new KeepAliveGrant(20, 20), KeepAlivePolicy.Resolve(5, v5: true, serverKeepAlive: 20, maxKeepAlive: 0));
        Assert.Equal(new KeepAliveGrant(20, 20), KeepAlivePolicy.Resolve(0, v5: true, serverKeepAlive: 20, maxKeepAlive: 0));
        Assert.Equal(new KeepAliveGrant(5, null), KeepAlivePolicy.Resolve(5, v5: false, serverKeepAlive: 20, maxKeepAlive: 0));
    }

    [Fact]
    public void Server_keep_alive_is_capped_by_max_keep_alive()
    {
        Assert.Equal(new KeepAliveGrant(30, 30), KeepAlivePolicy.Resolve(5, v5: true, serverKeepAlive: 90, maxKeepAlive: 30));
        Assert.Equal(new KeepAliveGrant(30, null), KeepAlivePolicy.Resolve(0, v5: false, serverKeepAlive: 90, maxKeepAlive: 30));
    }

    [Theory]
    [InlineData(60, 90_000, KeepAliveVerdict.Alive)] // exactly one and a half periods: not yet
    [InlineData(60, 90_001, KeepAliveVerdict.Expired)] // past it [MQTT-3.1.2-24]
    [InlineData(60, 60_001, KeepAliveVerdict.Alive)] // one period is not enough to close
    [InlineData(1, 1_501, KeepAliveVerdict.Expired)]
    [InlineData(0, 10_000_000, KeepAliveVerdict.Alive)] // 0: no keep alive, never timed out
    public void A_silent_client_should_be_closed_after_one_and_a_half_keep_alive_periods(int keepAlive, long silentMs, KeepAliveVerdict expected)
    {
        const long lastPacket = 5_000;
        Assert.Equal(expected, KeepAlivePolicy.Check(keepAlive, lastPacket, lastPacket + silentMs, readingPaused: false));
    }

    [Fact]
    public void A_client_the_broker_stopped_reading_should_not_be_timed_out_for_its_silence()
    {
        Assert.Equal(KeepAliveVerdict.Paused, KeepAlivePolicy.Check(10, lastPacketMs: 0, nowMs: 1_000_000, readingPaused: true));
    }
}
