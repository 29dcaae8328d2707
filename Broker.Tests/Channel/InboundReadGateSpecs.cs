using Broker.Channel;

namespace Broker.Tests.Channel;

/// <summary>When a publisher's socket stops being read and when it is read again (<see cref="InboundReadGate"/>).</summary>
public sealed class InboundReadGateSpecs
{
    private const int ReceiveMaximum = 10;

    private static bool From(bool paused, int probes = 0, int qos1 = 0, bool rateLimited = false, bool held = false) =>
        InboundReadGate.Paused(paused, probes, qos1, ReceiveMaximum, rateLimited, held);

    [Fact]
    public void A_publisher_within_every_bound_is_read()
    {
        Assert.False(From(paused: false, probes: 3, qos1: 9));
    }

    [Theory]
    [InlineData(4, 0, false, false)] // four QoS 0 probes unanswered
    [InlineData(0, 10, false, false)] // QoS 1 in flight reached Receive Maximum [MQTT-3.3.4-9]
    [InlineData(0, 0, true, false)] // over the publish rate
    [InlineData(0, 0, false, true)] // a subscriber's full queue holds one of its publishes
    public void Reading_pauses_at_any_bound(int probes, int qos1, bool rateLimited, bool held)
    {
        Assert.True(From(paused: false, probes, qos1, rateLimited, held));
    }

    [Theory]
    [InlineData(2, 0, false, false)] // more than one probe still out
    [InlineData(0, 5, false, false)] // QoS 1 not yet below half of Receive Maximum
    [InlineData(0, 0, true, false)]
    [InlineData(0, 0, false, true)]
    public void Reading_stays_paused_until_well_below_the_bounds(int probes, int qos1, bool rateLimited, bool held)
    {
        Assert.True(From(paused: true, probes, qos1, rateLimited, held));
    }

    [Fact]
    public void Reading_resumes_with_one_probe_out_at_most_and_QoS_1_below_half()
    {
        Assert.False(From(paused: true, probes: 1, qos1: 4));
    }

    [Fact]
    public void With_a_Receive_Maximum_of_1_reading_resumes_once_nothing_awaits_PUBACK()
    {
        Assert.True(InboundReadGate.Paused(false, 0, qos1InFlight: 1, receiveMaximum: 1, rateLimited: false, held: false));
        Assert.True(InboundReadGate.Paused(true, 0, qos1InFlight: 1, receiveMaximum: 1, rateLimited: false, held: false));
        Assert.False(InboundReadGate.Paused(true, 0, qos1InFlight: 0, receiveMaximum: 1, rateLimited: false, held: false));
    }
}
