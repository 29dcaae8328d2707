using Broker.Sessions;

namespace Broker.Tests.Sessions;

/// <summary>The v5 Receive Maximum rule over a client's QoS 1 and QoS 2 publishes (MQTT-v5.0 4.9, [MQTT-3.3.4-9]).</summary>
public sealed class InboundQuotaSpecs
{
    [Fact]
    public void QoS2_publishes_up_to_Receive_Maximum_are_admitted_and_one_more_is_not()
    {
        var quota = new InboundQuota(3);
        Assert.True(quota.AdmitQos2(1, qos1InFlight: 0));
        Assert.True(quota.AdmitQos2(2, qos1InFlight: 0));
        Assert.True(quota.AdmitQos2(3, qos1InFlight: 0));
        Assert.False(quota.AdmitQos2(4, qos1InFlight: 0));
    }

    [Fact]
    public void A_resent_QoS2_publish_takes_no_second_slot()
    {
        var quota = new InboundQuota(2);
        Assert.True(quota.AdmitQos2(1, 0));
        Assert.True(quota.AdmitQos2(1, 0));
        Assert.True(quota.AdmitQos2(1, 0));
        Assert.Equal(1, quota.Qos2InFlight);
        Assert.True(quota.AdmitQos2(2, 0));
    }

    [Fact]
    public void Completing_a_QoS2_publish_frees_its_slot()
    {
        var quota = new InboundQuota(1);
        Assert.True(quota.AdmitQos2(1, 0));
        quota.Complete(1);
        Assert.Equal(0, quota.Qos2InFlight);
        Assert.True(quota.AdmitQos2(2, 0));
        quota.Complete(99); // unknown id (from an earlier connection): nothing changes
        Assert.Equal(1, quota.Qos2InFlight);
    }

    [Fact]
    public void QoS1_and_QoS2_share_one_quota()
    {
        var quota = new InboundQuota(3);
        Assert.True(quota.AdmitQos2(1, qos1InFlight: 2));
        Assert.False(quota.AdmitQos2(2, qos1InFlight: 2));

        var other = new InboundQuota(3);
        Assert.True(other.AdmitQos2(1, 0));
        Assert.True(other.AdmitQos2(2, 0));
        Assert.False(other.Qos1Exceeds(qos1InFlight: 1));
        Assert.True(other.Qos1Exceeds(qos1InFlight: 2));
    }
}
