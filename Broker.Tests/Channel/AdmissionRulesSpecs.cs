using System.Collections.Immutable;
using Broker.Channel;
using Broker.Protocol;
using Broker.Protocol.Packets;

namespace Broker.Tests.Channel;

/// <summary>The broker's topic-level limit and the ACL's verdicts applied to PUBLISH and SUBSCRIBE, and the merged SUBACK.</summary>
public sealed class AdmissionRulesSpecs
{
    [Theory]
    [InlineData("a", 1)]
    [InlineData("", 1)]
    [InlineData("a/b/c", 3)]
    [InlineData("/a/", 3)]
    public void Levels_should_count_the_separators_plus_one(string topic, int levels) =>
        Assert.Equal(levels, AdmissionRules.Levels(topic));

    [Fact]
    public void A_topic_within_the_limit_or_without_one_should_be_admitted()
    {
        Assert.Equal(PublishVerdict.Admitted, AdmissionRules.CheckDepth("a/b/c", 3, MqttQoS.AtLeastOnce, v5: true));
        Assert.Equal(PublishVerdict.Admitted, AdmissionRules.CheckDepth("a/b/c/d/e/f", 0, MqttQoS.AtLeastOnce, v5: true));
    }

    [Fact]
    public void A_v5_QoS_1_publish_too_deep_should_be_answered_0x90_and_the_connection_kept()
    {
        var verdict = AdmissionRules.CheckDepth("a/b/c/d", 3, MqttQoS.AtLeastOnce, v5: true);
        Assert.Equal(new PublishVerdict(PublishAdmission.Refuse, MqttReasonCode.TopicNameInvalid, PublishRefusal.TooDeep), verdict);
    }

    [Theory]
    [InlineData(MqttQoS.AtMostOnce, true)] // nothing to answer a QoS 0 publish with
    [InlineData(MqttQoS.AtLeastOnce, false)] // 3.1.1 cannot be told why
    [InlineData(MqttQoS.ExactlyOnce, false)]
    public void A_publish_too_deep_that_cannot_be_answered_should_close_the_connection_with_0x90(MqttQoS qos, bool v5)
    {
        var verdict = AdmissionRules.CheckDepth("a/b/c/d", 3, qos, v5);
        Assert.Equal(new PublishVerdict(PublishAdmission.Disconnect, MqttReasonCode.TopicNameInvalid, PublishRefusal.TooDeep), verdict);
    }

    [Theory]
    [InlineData("$SYS", true)]
    [InlineData("$SYS/broker/clients", true)]
    [InlineData("$SYSTEM/x", false)]
    [InlineData("a/$SYS/b", false)]
    [InlineData("$share/g/x", false)]
    public void SYS_and_below_should_be_the_brokers_own(string topic, bool own) =>
        Assert.Equal(own, AdmissionRules.IsSystemTopic(topic));

    [Fact]
    public void A_denied_publish_should_be_refused_0x87_in_v5_and_acknowledged_in_3_1_1()
    {
        // [MQTT-3.3.5-2]: a 3.1.1 server that does not authorize a PUBLISH acknowledges it positively or closes.
        Assert.Equal(new PublishVerdict(PublishAdmission.Refuse, MqttReasonCode.NotAuthorized, PublishRefusal.Denied), AdmissionRules.AfterAcl(false, v5: true));
        Assert.Equal(new PublishVerdict(PublishAdmission.Refuse, MqttReasonCode.Success, PublishRefusal.Denied), AdmissionRules.AfterAcl(false, v5: false));
        Assert.Equal(PublishVerdict.Admitted, AdmissionRules.AfterAcl(true, v5: true));
    }

    [Fact]
    public void Filters_to_judge_should_leave_out_the_too_deep_and_the_invalid_and_count_a_shared_filter_by_its_own_levels()
    {
        var subscriptions = Subscriptions("a/b", "a/b/c/d", "$share/g/a/b/c", "a/#/b", "$share/g/a/b/c/d");
        var judged = AdmissionRules.ToJudge(subscriptions, 3, out var tooDeep);

        Assert.Equal([false, true, false, false, true], tooDeep);
        Assert.Equal(("a/b", MqttQoS.AtLeastOnce), judged[0]);
        Assert.Null(judged[1]); // too deep: refused here, the ACL is not asked
        Assert.Equal(("$share/g/a/b/c", MqttQoS.AtLeastOnce), judged[2]); // three levels after the group
        Assert.Null(judged[3]); // invalid: the session refuses it (0x8F / 0x80)
        Assert.Null(judged[4]);
    }

    [Fact]
    public void Each_filter_should_be_kept_refused_as_too_deep_or_denied_with_its_versions_code()
    {
        var subscriptions = Subscriptions("ok/1", "a/b/c/d", "denied/1", "a/#/b");
        var judged = AdmissionRules.ToJudge(subscriptions, 3, out var tooDeep);
        var admissions = AdmissionRules.Admit(tooDeep, judged, [true, false, false, false]);

        // The ACL's "no" for an unjudged filter (too deep, invalid) does not count: only judged ones were asked about.
        Assert.Equal([FilterAdmission.Kept, FilterAdmission.TooDeep, FilterAdmission.Denied, FilterAdmission.Kept], admissions);
        Assert.Equal([null, MqttReasonCode.TopicFilterInvalid, MqttReasonCode.NotAuthorized, null],
            admissions.Select(a => AdmissionRules.RefusalCode(a, v5: true)));
        Assert.Equal([null, MqttReasonCode.UnspecifiedError, MqttReasonCode.UnspecifiedError, null],
            admissions.Select(a => AdmissionRules.RefusalCode(a, v5: false)));
    }

    [Fact]
    public void Without_an_ACL_only_the_too_deep_filters_should_be_refused()
    {
        var subscriptions = Subscriptions("a", "a/b/c/d");
        var judged = AdmissionRules.ToJudge(subscriptions, 3, out var tooDeep);
        Assert.Equal([FilterAdmission.Kept, FilterAdmission.TooDeep], AdmissionRules.Admit(tooDeep, judged, verdicts: null));
    }

    [Fact]
    public void The_merged_SUBACK_should_keep_the_order_of_the_SUBSCRIBE()
    {
        // [MQTT-3.9.3-1] the order of reason codes matches the order of the topic filters.
        ImmutableArray<MqttReasonCode?> refused = [MqttReasonCode.NotAuthorized, null, MqttReasonCode.TopicFilterInvalid, null];
        ImmutableArray<MqttReasonCode> granted = [MqttReasonCode.GrantedQoS1, MqttReasonCode.GrantedQoS2];

        Assert.Equal(
            [MqttReasonCode.NotAuthorized, MqttReasonCode.GrantedQoS1, MqttReasonCode.TopicFilterInvalid, MqttReasonCode.GrantedQoS2],
            AdmissionRules.MergeSubAck(refused, granted).ToArray());
    }

    private static ImmutableArray<MqttTopicSubscription> Subscriptions(params string[] filters) =>
        [.. filters.Select(f => new MqttTopicSubscription { TopicFilter = f, QoS = MqttQoS.AtLeastOnce })];
}
